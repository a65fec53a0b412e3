"""The demo's banner suggests ``rollout set P`` naming the seeded tenant that joins next: with
the rollout's own bucketer, so the hint comes true for an Unleash-bucketed rollout too."""

from __future__ import annotations

import pytest

from cohortroute import open_store
from cohortroute.assign.unleash import unleash_bucket
from cohortroute.bucketing import bucket
from cohortroute.demo import NEW, SEED_TENANTS, STABLE
from cohortroute.demo.seed import rollout_candidates
from cohortroute.demo.server import _try_lines
from cohortroute.rollout import RolloutController

GROUP = "demo-toggle"
COMMAND = "cohortroute --store memory://"


def hint(store_lines: list[str]) -> tuple[str, str]:
    """(percent, tenant) of the banner's ``rollout set`` line."""
    (line,) = [line for line in store_lines if " rollout set " in line]
    command, _, comment = line.partition("#")
    return command.split()[-1], comment.split()[0]


@pytest.mark.parametrize("bucketer", ["sha256", "unleash"])
def test_the_banner_names_the_tenant_its_rollout_set_moves(bucketer: str) -> None:
    store = open_store("memory://")
    store.register_versions([STABLE, NEW], STABLE, actor="test")
    store.register_tenants(SEED_TENANTS)
    controller = RolloutController(store, settle=0)
    controller.start(NEW, percent="0", salt=GROUP, bucketer=bucketer)
    by = unleash_bucket if bucketer == "unleash" else bucket
    first = min(rollout_candidates(), key=lambda t: by(GROUP, t))

    percent, tenant = hint(_try_lines(COMMAND, store))
    assert tenant == first
    controller.set_percent(percent)
    moved = [t for t in rollout_candidates() if controller.explain(t).version == NEW]
    assert moved == [tenant]  # the banner's promise: exactly it joins


def test_the_two_bucketers_name_different_tenants_for_the_demo_s_group() -> None:
    """Otherwise the test above could pass with the hint ignoring the stored bucketer."""
    candidates = rollout_candidates()
    assert min(candidates, key=lambda t: bucket(GROUP, t)) != min(
        candidates, key=lambda t: unleash_bucket(GROUP, t)
    )


def test_the_demos_help_does_not_promise_it_reads_the_store_variable() -> None:
    # The demo ignores $COHORTROUTE_STORE (it seeds its own store); its --store help said the
    # variable was the default, as every other command's does.
    import argparse

    from cohortroute.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    demo = " ".join(commands.choices["demo"].format_help().split())
    status = " ".join(commands.choices["status"].format_help().split())
    assert (
        "--store URL the store for the demo's state (default: sqlite:///cohortroute-demo.db;"
        in demo
    )
    assert "(default: $COHORTROUTE_STORE)" not in demo
    assert "(default: $COHORTROUTE_STORE)" in status

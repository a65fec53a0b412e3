"""The Unleash-compatible bucketer against Unleash's own client-specification test data, and
the pure-Python MurmurHash3 against the ``mmh3`` wheel."""

from __future__ import annotations

import json
import pathlib
import random
from typing import Any

import pytest

from cohortroute import Policy, Reason, Rollout, RolloutController, TenantRecord, decide
from cohortroute.assign.murmur3 import murmur3_32, murmur3_32_pure
from cohortroute.assign.unleash import normalized_hash, unleash_bucket
from cohortroute.errors import ValidationError
from cohortroute.policy import rollout_from_json, rollout_to_json
from cohortroute.store import MemoryStore

DATA = pathlib.Path(__file__).parent / "data" / "unleash"
FILES = [
    "03-gradual-rollout-user-id-strategy.json",
    "10-flexible-rollout-strategy.json",
    "12-custom-stickiness.json",
]

# Published MurmurHash3 x86_32 vectors (SMHasher / mmh3's own tests).
VECTORS = [
    (b"", 0, 0),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"aaa", 0x9747B28C, 0x283E0130),
    (b"aa", 0x9747B28C, 0x5D211726),
    (b"a", 0x9747B28C, 0x7FA09EA6),
    (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    (b"foo", 0, 4138058784),
]


Strategy = tuple[str, int, "str | None", str]
"""One rollout strategy as applied to one context: (group id, percentage, id or None,
stickiness)."""


def strategies(features: dict[str, Any], test: dict[str, Any]) -> list[Strategy | None]:
    """The toggle's strategies for this test's context (None: Unleash's always-on default)."""
    found: list[Strategy | None] = []
    context = test["context"]
    for strategy in features[test["toggleName"]]["strategies"]:
        assert not strategy.get("constraints")  # only bucketing is under test here
        if strategy["name"] == "default":
            found.append(None)
            continue
        params = strategy["parameters"]
        if strategy["name"] == "gradualRolloutUserId":
            percentage, stickiness = params["percentage"], "userId"
        else:
            percentage, stickiness = params["rollout"], params["stickiness"]
        if stickiness == "default":
            ident = context.get("userId") or context.get("sessionId")
        elif stickiness in ("userId", "sessionId"):
            ident = context.get(stickiness)
        else:
            ident = context.get("properties", {}).get(stickiness)
        found.append((params["groupId"], int(percentage), ident, stickiness))
    return found


def cases() -> list[Any]:
    """One param per test of the three files: (strategies, expected result)."""
    found = []
    for name in FILES:
        data = json.loads((DATA / name).read_text())
        features = {f["name"]: f for f in data["state"]["features"]}
        for test in data["tests"]:
            found.append(
                pytest.param(
                    strategies(features, test),
                    test["expectedResult"],
                    id=f"{name[:2]}:{test['description']}",
                )
            )
    return found


def unleash_enabled(strategy: Strategy | None) -> bool:
    """Unleash's rule for one strategy, with our bucketer in place of its normalizedHash."""
    if strategy is None:
        return True
    group, percentage, ident, stickiness = strategy
    if ident is None:
        # Unleash's default stickiness falls back to a random id; none matches otherwise.
        return stickiness == "default" and percentage == 100
    return unleash_bucket(group, ident) < percentage * 100


@pytest.mark.parametrize(("found", "expected"), cases())
def test_the_unleash_bucketer_gives_unleash_s_expected_results(
    found: list[Strategy | None], expected: bool
) -> None:
    assert any(unleash_enabled(strategy) for strategy in found) is expected


def test_the_specification_data_reaches_every_branch() -> None:
    params = cases()
    bucketed = [
        (strategy, p.values[1])
        for p in params
        for strategy in p.values[0]
        if strategy is not None and strategy[2] is not None and 0 < strategy[1] < 100
    ]
    assert len(params) == 21 and len(bucketed) >= 8
    assert {expected for _, expected in bucketed} == {True, False}


@pytest.mark.parametrize(("data", "seed", "expected"), VECTORS)
def test_murmur3_matches_the_published_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32_pure(data, seed) == expected
    assert murmur3_32(data, seed) == expected


def test_the_pure_murmur3_matches_the_mmh3_wheel() -> None:
    mmh3 = pytest.importorskip("mmh3")
    rng = random.Random(7)
    for length in range(40):
        data = rng.randbytes(length)
        for seed in (0, 1, 0x9747B28C):
            assert murmur3_32_pure(data, seed) == mmh3.hash(data, seed, signed=False)


def test_a_rollout_with_the_unleash_bucketer_decides_as_unleash() -> None:
    rollout = Rollout("v2", 1000, "Feature.flexibleRollout.10", started_at=0.0, bucketer="unleash")
    policy = Policy(default="v1", rollout=rollout)
    for ident in ("174", "499", "1", "25", "acme"):
        decision = decide(policy, TenantRecord(ident), "v1", now=0.0)
        enabled = normalized_hash("Feature.flexibleRollout.10", ident) <= 10
        assert (decision.reason is Reason.ROLLOUT) is enabled
        assert decision.bucket == unleash_bucket("Feature.flexibleRollout.10", ident)


def test_the_bucketer_is_stored_with_the_rollout_and_old_rollouts_read_as_sha256() -> None:
    rollout = Rollout("v2", 500, "g", started_at=0.0, bucketer="unleash")
    assert rollout_from_json(rollout_to_json(rollout)) == rollout
    plain = Rollout("v2", 500, "g", started_at=0.0)
    assert "bucketer" not in (rollout_to_json(plain) or {})  # stored exactly as before
    assert rollout_from_json(rollout_to_json(plain)) == plain


def test_the_controller_starts_an_unleash_rollout_and_refuses_an_unknown_bucketer() -> None:
    store = MemoryStore()
    from cohortroute import CohortRouter

    from .apps import wsgi_version

    CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")}, domains=["x.com"], store=store
    )
    controller = RolloutController(store)
    with pytest.raises(
        ValidationError, match="unknown bucketer 'fnv'; choose one of sha256, unleash"
    ):
        controller.start("v2", percent=10, bucketer="fnv")
    started = controller.start(
        "v2", percent=10, salt="Feature.flexibleRollout.10", bucketer="unleash"
    )
    assert store.policy().rollout == started and started.bucketer == "unleash"
    assert controller.explain("174").reason is Reason.ROLLOUT  # Unleash enables userId 174 at 10%


def unleash_store() -> tuple[MemoryStore, RolloutController]:
    """A memory store where a router recorded v1 (the default) and v2, with 40 tenants."""
    from cohortroute import CohortRouter

    from .apps import wsgi_version

    store = MemoryStore()
    CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")}, domains=["x.com"], store=store
    )
    store.register_tenants([f"t{i}" for i in range(40)])
    return store, RolloutController(store, settle=0)


WHOLE = "an Unleash rollout \\(bucketer unleash\\) moves in whole percentages only"


def test_an_unleash_rollout_is_refused_a_fraction_of_a_percent_or_a_blank_salt() -> None:
    store, controller = unleash_store()
    with pytest.raises(ValidationError, match=f"{WHOLE}.*10.5% would serve 11%; give 10% or 11%"):
        controller.start("v2", percent="10.5", salt="g", bucketer="unleash")
    with pytest.raises(ValidationError, match=f"{WHOLE}.*plan step 5.5% would serve 6%"):
        controller.start("v2", plan=[1, 5.5, 25], salt="g", bucketer="unleash")
    for blank in ("", "  ", None):  # None: a random salt would match no Unleash cohort
        with pytest.raises(ValidationError, match="needs the toggle's groupId as its salt"):
            controller.start("v2", percent=10, salt=blank, bucketer="unleash")
    assert store.policy().rollout is None
    plain = controller.start("v2", percent="10.5", salt="g")  # sha256 keeps 0.01 % steps
    assert plain.percent == 1050


def test_set_and_advance_keep_an_unleash_rollout_on_whole_percentages() -> None:
    store, controller = unleash_store()
    controller.start("v2", plan=[10, 20, 50], salt="g", bucketer="unleash")
    revision = store.revision()
    inside = [t for t in (f"t{i}" for i in range(40)) if controller.explain(t).version == "v2"]
    assert any((controller.explain(t).bucket or 0) >= 100 for t in inside)  # 0.5 % drops them
    for fraction in ("10.5", "0.5", 20.01):  # raising; lowering is refused before any mark
        with pytest.raises(ValidationError, match=WHOLE):
            controller.set(fraction)
    with pytest.raises(ValidationError, match=WHOLE):
        store.set_percent("12.5")  # the store's own API refuses too
    assert store.revision() == revision
    assert not [r for r in store.tenants() if r.ratchet is not None]
    assert controller.advance(force=True).percent == 2000
    assert controller.set(11).percent == 1100


def test_an_unleash_rollout_stored_at_a_fraction_before_the_rule_still_runs_and_ends() -> None:
    """Only what a change sets is checked: an old 10.5 % rollout halts, resumes and goes whole."""
    from dataclasses import replace

    from cohortroute.changes import Mutation, StateReader

    store, controller = unleash_store()
    controller.start("v2", percent=10, salt="g", bucketer="unleash")

    def legacy(state: StateReader) -> Mutation:
        policy = state.policy()
        assert policy.rollout is not None
        m = Mutation(policy=replace(policy, rollout=replace(policy.rollout, percent=1050)))
        m.record("rollout-set", None, 1000, 1050)  # as releases before the rule wrote it
        return m

    store.write(legacy)
    stored = store.policy().rollout
    assert stored is not None and stored.percent == 1050
    assert controller.halt("checking").halted
    assert not controller.resume().halted
    assert controller.set(11).percent == 1100

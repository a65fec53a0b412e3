"""The migration runner decides who is pending with the routers' assignment chain.

A gated rollout serves a tenant the candidate only once its data is migrated, so the runner and
the routers must agree on who the rollout has reached: a custom backend that sends a tenant to
the candidate early must get that tenant migrated, and one that holds a tenant back must keep
the runner off its data (migrated data is served the candidate whatever the backends say).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from cohortroute import Assignment, Policy, Query, Rollout, TenantRecord
from cohortroute.assign.chain import Chain
from cohortroute.bucketing import bucket
from cohortroute.decision import decide
from cohortroute.rollout import RolloutController, jobs
from cohortroute.store import Store, open_store

from .migration_app import SCHEMA, make_migrations, read_schema, steps_run

TENANTS = [f"t{i:02d}" for i in range(24)]


@dataclass(frozen=True)
class Listed:
    """Sends the ``early`` tenants to the rollout's candidate and keeps the ``late`` ones on the
    default while a rollout runs (beta customers first, one region last)."""

    early: Collection[str] = ()
    late: Collection[str] = ()
    name: str = "listed"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        if query.rollout is None:
            return None
        if query.tenant in self.early:
            return Assignment(query.rollout.candidate, "beta", "beta customers first")
        if query.tenant in self.late:
            return Assignment(query.default, "region", "this region goes last")
        return None


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"
    handle = open_store(url)
    handle.register_versions(["v1", "v2"], "v1")
    yield handle
    handle.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def bucketed(percent: int) -> tuple[list[str], list[str]]:
    """(tenants the built-in rollout salted ``fixed`` reaches at ``percent`` points, others)."""
    inside = [t for t in TENANTS if bucket("fixed", t) < percent]
    return inside, [t for t in TENANTS if t not in inside]


def served(store: Store, chain: Chain, folder: Path, tenant: str) -> tuple[str, int]:
    """What a router with ``chain`` serves the tenant, and the schema its data is at."""
    decision = decide(store.policy(), store.tenant(tenant), "v1", chain=chain)
    assert not decision.maintenance
    return decision.version, read_schema(folder, tenant)


def test_run_migrates_exactly_the_tenants_the_routers_chain_puts_on_the_candidate(
    store: Store, folder: Path
) -> None:
    inside, outside = bucketed(3000)
    assert len(inside) >= 3 and len(outside) >= 3
    backend = Listed(early=outside[:2], late=inside[:2])
    chain = Chain([backend])
    c = RolloutController(
        store, migrations=make_migrations(folder), assign=chain, drain=0, settle=0
    )
    c.register(TENANTS)
    c.start("v2", percent=30, salt="fixed")
    wanted = sorted(outside[:2] + inside[2:])

    assert sorted(c.pending()) == wanted
    result = c.run(concurrency=3)
    assert result.ok and sorted(result.moved) == wanted
    for tenant in TENANTS:
        expected = "v2" if tenant in wanted else "v1"
        assert served(store, chain, folder, tenant) == (expected, SCHEMA[expected])
    assert all(steps_run(folder, t, "up3") == 0 for t in inside[:2])  # held back: untouched
    assert c.pending() == [] and c.run().moved == []


def test_migrating_one_tenant_follows_the_chain_too(store: Store, folder: Path) -> None:
    """``migrate(tenant)`` decides with the chain when it takes the lease, as ``run`` does."""
    backend = Listed(late=TENANTS)
    c = RolloutController(
        store, migrations=make_migrations(folder), assign=[backend], drain=0, settle=0
    )
    c.register(TENANTS)
    c.start("v2", percent=100)
    assert c.pending() == []
    assert c.migrate(TENANTS[0]).outcome == "unchanged"
    assert read_schema(folder, TENANTS[0]) == 1


def test_finalize_still_migrates_everybody_whatever_the_backends_say(
    store: Store, folder: Path
) -> None:
    backend = Listed(late=TENANTS[:5])
    chain = Chain([backend])
    c = RolloutController(
        store, migrations=make_migrations(folder), assign=chain, drain=0, settle=0
    )
    c.register(TENANTS)
    c.start("v2", percent=50)
    c.run()
    result = c.finalize()
    assert result.ok and store.policy().default == "v2"
    assert all(read_schema(folder, t) == SCHEMA["v2"] for t in TENANTS)


def test_the_lease_transaction_reuses_the_answer_while_the_tenant_is_unchanged() -> None:
    """The chain is asked before the write transaction (a backend may be slow or remote) and
    asked again inside it only when the policy or the tenant changed in between."""
    calls: list[str] = []

    @dataclass(frozen=True)
    class Counted(Listed):
        def assign(self, query: Query, /) -> Assignment | None:
            calls.append(query.tenant)
            return Listed.assign(self, query)

    rollout = Rollout("v2", 10_000, "s", started_at=0.0, gated=True)
    policy = Policy(default="v1", versions=frozenset({"v1", "v2"}), rollout=rollout)
    record = TenantRecord("acme")
    intends = jobs.asked_before(Chain([Counted(late={"acme"})]), policy, record, 1.0)
    assert calls == ["acme"]
    assert intends(replace(policy, revision=7), record, 2.0).version == "v1"
    assert calls == ["acme"]  # another revision, same facts: the answer stands
    assert intends(policy, replace(record, tags=frozenset({"beta"})), 2.0).version == "v1"
    assert calls == ["acme", "acme"]  # the tenant changed: asked again
    held_back = replace(policy, rollout=replace(rollout, percent=0))
    assert not jobs.is_pending(held_back, record, 2.0, retry_failed=False, intends=intends)

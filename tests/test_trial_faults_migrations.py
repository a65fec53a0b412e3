"""An unlucky operator's migrations: crashed runs, resumed runs that fail, paused runners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from cohortroute._clock import ManualClock
from cohortroute.decision import decide
from cohortroute.migrations import Migrations
from cohortroute.policy import TenantRecord
from cohortroute.rollout import RolloutController
from cohortroute.store import MemoryStore, Store


class Crash(BaseException):
    """Stands for SIGKILL: the runner stops where it is, its lease left behind."""


def _world(data: dict[str, int], fail: set[str]) -> Migrations:
    migrations = Migrations()
    migrations.version("v1", 1)
    migrations.version("v2", 3)

    def up(n: int) -> None:
        @migrations.upgrade(n)
        def step(tenant: str) -> None:
            if f"up{n}" in fail:
                raise RuntimeError("disk full")
            data[tenant] = n

    def down(n: int) -> None:
        @migrations.downgrade(n)
        def step(tenant: str) -> None:
            data[tenant] = n - 1

    for n in (1, 2, 3):
        up(n)
    for n in (2, 3):
        down(n)
    return migrations


def _served(store: Store, clock: ManualClock, tenant: str) -> str:
    decision = decide(store.policy(), store.tenant(tenant), "v1", now=clock.time())
    return "503" if decision.maintenance else decision.version


@pytest.mark.filterwarnings("ignore")
def test_a_resumed_migration_that_fails_puts_back_what_the_crashed_run_did() -> None:
    data = {"acme": 1}
    fail: set[str] = set()
    migrations = _world(data, fail)
    clock = ManualClock(1000.0)
    store = MemoryStore()
    store.clock = clock
    store.register_versions(["v1", "v2"], "v1")

    def crash_after_a_step(event: str, tenant: str) -> None:
        if event == "step":
            raise Crash

    def controller(on_event: Callable[[str, str], None] | None = None) -> RolloutController:
        return RolloutController(
            store,
            migrations=migrations,
            clock=clock,
            drain=0,
            settle=0,
            lease_ttl=30,
            on_event=on_event,
        )

    first = controller(on_event=crash_after_a_step)
    first.register(["acme"])
    first.start("v2", percent=100)
    with pytest.raises(Crash):
        first.run()
    assert data["acme"] == 2 and _served(store, clock, "acme") == "503"

    clock.advance(60)  # the crashed runner's lease expires; the next run resumes, and fails
    fail.add("up3")
    result = controller().run()
    assert not result.ok
    record = store.tenant("acme")
    assert record.migration_status == "failed"
    # Served its old version again: so its data must be back where v1 needs it (it stayed at
    # step 2, half-migrated, under v1).
    assert _served(store, clock, "acme") == "v1"
    assert data["acme"] == 1
    assert record.state.get("modules") == {"app": 1}

    fail.clear()  # once fixed, a retry moves it all the way
    assert controller().run(retry_failed=True).ok
    assert data["acme"] == 3 and _served(store, clock, "acme") == "v2"


@pytest.mark.filterwarnings("ignore")
def test_a_rollout_ended_while_a_runner_migrates_never_serves_the_default_on_new_data() -> None:
    """A rollback lists the tenants to move back, then halts: a runner that took a tenant in
    between is not on its list, and the rollback ends the rollout under it. The runner must not
    then flip the tenant (the default would serve it on the candidate's data): its data goes
    back and it is recorded failed."""
    data = {"acme": 1}
    migrations = _world(data, set())
    clock = ManualClock(1000.0)
    store = MemoryStore()
    store.clock = clock
    store.register_versions(["v1", "v2"], "v1")
    ended: list[int] = []

    def end_the_rollout_once(event: str, tenant: str) -> None:
        if event == "step" and not ended:  # between two steps of the runner
            ended.append(
                store.update_rollout("rollout-rollback", lambda p: replace(p, rollout=None))
            )

    runner = RolloutController(
        store,
        migrations=migrations,
        clock=clock,
        drain=0,
        settle=0,
        lease_ttl=30,
        on_event=end_the_rollout_once,
    )
    runner.register(["acme"])
    runner.start("v2", percent=100)
    result = runner.run()

    assert ended and store.policy().rollout is None
    (moved,) = result.results
    assert moved.outcome == "failed" and "moved its data back to v1" in (moved.error or "")
    assert _served(store, clock, "acme") == "v1"
    assert data["acme"] == 1
    assert store.tenant("acme").state.get("modules") == {"app": 1}


@pytest.mark.filterwarnings("ignore")
def test_a_rollback_right_after_a_killed_runner_keeps_the_rollout_until_its_data_is_back() -> None:
    """A runner is killed mid-migration; the operator rolls back at once, inside its lease. The
    rollback must not end the rollout over that tenant (it skipped it as busy, and then nothing
    ever resumed it: the default served it on half-migrated data, for good)."""
    data = {"acme": 1}
    migrations = _world(data, set())
    clock = ManualClock(1000.0)
    store = MemoryStore()
    store.clock = clock
    store.register_versions(["v1", "v2"], "v1")

    def controller(on_event: Callable[[str, str], None] | None = None) -> RolloutController:
        return RolloutController(
            store,
            migrations=migrations,
            clock=clock,
            drain=0,
            settle=0,
            lease_ttl=30,
            on_event=on_event,
        )

    def crash_after_a_step(event: str, tenant: str) -> None:
        if event == "step":
            raise Crash

    killed = controller(crash_after_a_step)
    killed.register(["acme"])
    killed.start("v2", percent=100)
    with pytest.raises(Crash):
        killed.run()

    operator = controller()
    refused = operator.rollback()
    assert not refused.ok
    (outcome,) = refused.results
    assert outcome.outcome == "refused" and "roll back again" in (outcome.error or "")
    assert "(None -> None)" not in refused.summary()
    rollout = store.policy().rollout
    assert rollout is not None and rollout.halted  # not ended: acme's data is half-moved
    assert _served(store, clock, "acme") == "503"

    clock.advance(60)  # the killed runner's lease runs out
    assert operator.rollback().ok
    assert store.policy().rollout is None
    assert data["acme"] == 1 and _served(store, clock, "acme") == "v1"


def test_a_tenant_a_runner_migrates_while_a_rollback_starts_is_moved_back_too() -> None:
    """The rollback listed the tenants to move back before it halted the rollout: a runner that
    took and finished a tenant in between left it on the candidate's data, and the rollback then
    ended the rollout over it (the default served it on v2 data). It lists after the halt now."""
    data = {"acme": 1, "globex": 1}
    migrations = _world(data, set())
    clock = ManualClock(1000.0)
    store = MemoryStore()
    store.clock = clock
    store.register_versions(["v1", "v2"], "v1")

    def controller() -> RolloutController:
        return RolloutController(
            store, migrations=migrations, clock=clock, drain=0, settle=0, lease_ttl=30
        )

    first = controller()
    first.register(["acme", "globex"])
    first.start("v2", percent=100)
    assert first.run(tenants=["acme"]).ok
    assert data == {"acme": 3, "globex": 1}

    listed = store.tenants
    raced: list[bool] = []

    def tenants_then_a_runner_finishes_globex() -> Iterator[TenantRecord]:
        records = list(listed())
        if not raced:  # the rollback's first look; another runner is faster
            raced.append(True)
            assert controller().run(tenants=["globex"]).ok
        return iter(records)

    store.tenants = tenants_then_a_runner_finishes_globex  # type: ignore[method-assign]
    result = controller().rollback()
    assert raced and result.ok, result.summary()
    assert store.policy().rollout is None
    assert data == {"acme": 1, "globex": 1}
    assert _served(store, clock, "globex") == "v1"
    assert store.tenant("globex").data_version is None

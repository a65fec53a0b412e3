"""Per-tenant migrations: declaring and planning, the runner, leases, crashes, the 503 gate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, ConfigurationError, ConflictError, ValidationError
from cohortroute._clock import ManualClock
from cohortroute.decision import decide
from cohortroute.migrations import Migrations, MigrationStep, Step
from cohortroute.rollout import RolloutController, TenantResult
from cohortroute.rollout.batch import run_batch
from cohortroute.store import MemoryStore, Store, open_store

from .apps import asgi_version, communicator
from .migration_app import SCHEMA, make_migrations, read_schema, spawn, steps_run, version_app


class Crash(BaseException):
    """Stands in for a runner dying at a given point (it escapes every ``except Exception``)."""


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# The shared stores' fixtures (a fresh Redis prefix / PostgreSQL schema per test; skipped when
# the server is not running), as the store tests use them.
pytest_plugins = ("tests.services",)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param in ("redis", "postgres"):
        return str(request.getfixturevalue(f"{request.param}_url"))
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = open_store(url)
    s.register_versions(["v1", "v2"], "v1")
    yield s
    s.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def controller(store: Store, migrations: Migrations, **kwargs: Any) -> RolloutController:
    kwargs.setdefault("settle", 0)
    kwargs.setdefault("drain", 0)
    return RolloutController(store, migrations=migrations, **kwargs)


def state_of(store: Store, folder: Path, tenant: str) -> tuple[str, int] | str:
    """("v1", schema) / ("v2", schema) as a router would serve it, or "503" in maintenance."""
    decision = decide(store.policy(), store.tenant(tenant), "v1")
    if decision.maintenance:
        return "503"
    return decision.version, read_schema(folder, tenant)


def consistent(store: Store, folder: Path, tenant: str) -> bool:
    seen = state_of(store, folder, tenant)
    return seen == "503" or seen[1] == SCHEMA[seen[0]]


# --- declaring and planning -----------------------------------------------------------------


def test_plan_orders_downgrades_then_upgrades_per_module() -> None:
    m = Migrations()
    m.version("a", core=1, billing=0)
    m.version("b", core=3, billing=1)
    for module, top in (("core", 3), ("billing", 1)):
        for n in range(1, top + 1):
            m.upgrade(n, module=module)(lambda t: None)
            m.downgrade(n, module=module)(lambda t: None)
    up = m.plan(m.modules_for("a"), m.modules_for("b"))
    assert [str(s) for s in up] == ["core 1 -> 2", "core 2 -> 3", "billing 0 -> 1"]
    assert m.steps_between(m.modules_for("a"), m.modules_for("b")) == up  # the new name
    assert Step is MigrationStep and all(isinstance(s, Step) for s in up)
    down = m.plan(m.modules_for("b"), m.modules_for("a"))
    assert [str(s) for s in down] == ["billing 1 -> 0", "core 3 -> 2", "core 2 -> 1"]
    assert m.needs_migration("a", "b") and not m.needs_migration("a", "a")
    assert not m.needs_migration("undeclared", "also-undeclared")


def test_declaration_mistakes_are_caught_early() -> None:
    m = Migrations()
    m.version("v2", 2)
    m.upgrade(2)(lambda t: None)
    with pytest.raises(ConfigurationError, match=r"@migrations.upgrade\(1, module='app'\)"):
        m.check()
    with pytest.raises(ConfigurationError, match="declared twice"):
        m.upgrade(2)(lambda t: None)
    with pytest.raises(ConfigurationError, match="both snapshot= and restore="):
        Migrations(snapshot=lambda t: None)
    with pytest.raises(ConfigurationError, match="identifier"):
        m.version("v3", **{"not valid": 1})


def test_a_missing_downgrade_is_planned_as_such() -> None:
    m = Migrations()
    m.version("v2", 1)
    m.upgrade(1)(lambda t: None)
    (step,) = m.plan({"app": 1}, {})
    assert step.run is None and step.direction == "down"


# --- the runner --------------------------------------------------------------------------


def test_a_gated_rollout_is_never_touched_without_the_migrations(
    store: Store, folder: Path
) -> None:
    c = controller(store, make_migrations(folder))
    c.register(["acme"])
    c.start("v2", percent=100)
    blind = RolloutController(store, drain=0, settle=0)
    for action in (blind.run, blind.finalize, blind.rollback, lambda: blind.migrate("acme")):
        with pytest.raises(ConfigurationError, match=r"call RolloutController\(store, migrations="):
            action()
    assert state_of(store, folder, "acme") == ("v1", 1)


def test_a_non_gated_rollout_needs_no_run(store: Store, folder: Path) -> None:
    m = Migrations()  # nothing declared: the versions share their data
    c = controller(store, m)
    c.start("v2", percent=50)
    result = c.run()
    assert result.ok and result.results == [] and "needs no data migration" in result.summary()


def test_run_migrates_then_flips_and_reruns_do_nothing(store: Store, folder: Path) -> None:
    c = controller(store, make_migrations(folder))
    names = [f"t{i}" for i in range(12)]
    c.register(names)
    c.start("v2", percent=50)
    assert store.policy().rollout.gated  # type: ignore[union-attr]
    reached = {n for n in names if decide(store.policy(), store.tenant(n), "v1").bucket < 5000}  # type: ignore[operator]
    assert {n for n in names if state_of(store, folder, n)[0] == "v2"} == set()
    result = c.run(concurrency=3)
    assert result.ok and sorted(result.moved) == sorted(reached)
    for n in names:
        assert state_of(store, folder, n) == (("v2", 3) if n in reached else ("v1", 1))
    again = c.run()
    assert again.ok and again.moved == []
    assert all(steps_run(folder, n, "up3") == 1 for n in reached)
    story = [e.action for e in reversed(c.history(sorted(reached)[0]))]
    assert story[-4:] == ["migration-start", "migration-step", "migration-step", "migrate"]
    last = c.history(sorted(reached)[0])[0]
    assert last.before["version"] == "v1" and last.after["version"] == "v2"
    assert last.after["result"] == "ok" and "duration" in last.after


def test_a_batch_with_one_failing_tenant(store: Store, folder: Path) -> None:
    names = [f"t{i:03d}" for i in range(100)]
    c = controller(store, make_migrations(folder, fail=frozenset({"t042"})))
    c.register(names)
    c.start("v2", percent=100)
    seen: list[TenantResult] = []
    result = c.run(concurrency=8, progress=seen.append)
    assert len(seen) == 100
    assert not result.ok
    assert len(result.moved) == 99 and "t042" not in result.moved
    assert [f.tenant for f in result.failures] == ["t042"]
    summary = result.summary()
    assert "1 failed, 99 moved -- FAILED" in summary
    assert (
        "t042: failed (v1 -> v2): step app 2 -> 3 failed: RuntimeError: backfill failed" in summary
    )
    assert state_of(store, folder, "t042") == ("v1", 1)  # old version, data as it was
    assert steps_run(folder, "t042", "down2") == 1  # undone by its downgrade
    assert all(state_of(store, folder, n) == ("v2", 3) for n in names if n != "t042")
    assert "t042" in c.status()["failed"]
    entry = c.history("t042")[0]
    assert entry.action == "migration-failed" and "backfill failed" in entry.after["error"]
    assert store.policy().rollout.halted is False  # type: ignore[union-attr]
    assert c.run().moved == []  # a failed tenant is not retried on its own ...
    assert c.run(retry_failed=True).failures[0].tenant == "t042"  # ... only when asked


def test_too_many_failures_halt_the_rollout(store: Store, folder: Path) -> None:
    names = [f"t{i}" for i in range(10)]
    c = controller(store, make_migrations(folder, fail=frozenset(names[:5])))
    c.register(names)
    c.start("v2", percent=100)
    result = c.run(concurrency=1, max_failures=2)
    assert not result.ok and result.halted and "max_failures=2" in result.halted
    assert len(result.failures) == 3
    assert [r.outcome for r in result.results].count("skipped") == 10 - 3
    rollout = store.policy().rollout
    assert rollout is not None and rollout.halted and "3 tenants failed" in str(rollout.halt_reason)
    assert all(consistent(store, folder, n) for n in names)


def test_snapshot_and_restore_put_data_back_without_downgrades(folder: Path) -> None:
    data: dict[str, int] = {"acme": 1}
    m = Migrations(snapshot=lambda t: data[t], restore=lambda t, saved: data.__setitem__(t, saved))
    m.version("v1", 1)
    m.version("v2", 3)
    m.upgrade(1)(lambda t: None)
    m.upgrade(2)(lambda t: data.__setitem__(t, 2))

    @m.upgrade(3)
    def boom(tenant: str) -> None:
        raise ValueError("nope")

    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    c = controller(store, m)
    c.register(["acme"])
    c.start("v2", percent=100)
    (result,) = c.run().results
    assert result.outcome == "failed" and data["acme"] == 1
    assert store.tenant("acme").state["modules"] == {"app": 1}


def test_an_undoable_failure_leaves_the_tenant_in_maintenance(folder: Path) -> None:
    data: dict[str, int] = {"acme": 1}
    broken = {"yes": True}
    m = Migrations()
    m.version("v1", 1)
    m.version("v2", 3)
    m.upgrade(1)(lambda t: None)
    m.upgrade(2)(lambda t: data.__setitem__(t, 2))  # no downgrade for it

    @m.upgrade(3)
    def flaky(tenant: str) -> None:
        if broken["yes"]:
            raise ValueError("disk full")
        data[tenant] = 3

    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    c = controller(store, m)
    c.register(["acme"])
    c.start("v2", percent=100)
    (result,) = c.run().results
    assert result.outcome == "broken" and "restoring its data failed" in str(result.error)
    decision = c.explain("acme")
    assert decision.maintenance and "repair" in decision.detail  # never served on half data
    broken["yes"] = False
    (result,) = c.run().results  # a broken tenant is resumed from where its data is
    assert result.outcome == "moved" and data["acme"] == 3
    assert c.explain("acme").version == "v2" and not c.explain("acme").maintenance


def test_rollback_runs_downgrades_and_is_refused_without_them(store: Store, folder: Path) -> None:
    names = [f"t{i}" for i in range(6)]
    c = controller(store, make_migrations(folder))
    c.register(names)
    c.start("v2", percent=100)
    assert c.run().ok
    one = c.rollback("t1")
    assert one.ok and state_of(store, folder, "t1") == ("v1", 1)
    assert "rolled back" in c.explain("t1").detail
    assert c.run().moved == []  # it stays back for the rest of this rollout
    assert c.history("t1")[0].action == "rollback"

    result = c.rollback()
    assert result.ok, result.summary()
    assert store.policy().rollout is None
    assert all(state_of(store, folder, n) == ("v1", 1) for n in names)


def test_rollback_without_downgrade_needs_force(folder: Path) -> None:
    m = Migrations()
    m.version("v1", 0)
    m.version("v2", 1)
    m.upgrade(1)(lambda t: None)
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    c = controller(store, m)
    c.register(["acme", "globex"])
    c.start("v2", percent=100)
    assert c.run().ok
    with pytest.raises(
        ConflictError, match=r"no downgrade for app 1 -> 0.*call rollback\(force=True\)"
    ):
        c.rollback("acme")
    with pytest.raises(ConflictError, match="2 tenant"):
        c.rollback()
    assert store.policy().rollout.halted is False  # type: ignore[union-attr]  # refused up front
    assert c.rollback("acme", force=True).ok
    assert c.explain("acme").version == "v1"


def test_finalize_migrates_everybody_then_switches_the_default(store: Store, folder: Path) -> None:
    names = [f"t{i}" for i in range(10)]
    c = controller(store, make_migrations(folder))
    c.register(names)
    c.start("v2", percent=20)
    c.run()
    c.rollback("t3")
    result = c.finalize()
    assert result.ok, result.summary()
    policy = store.policy()
    assert policy.default == "v2" and policy.rollout is None
    assert {state_of(store, folder, n) for n in names} == {("v2", 3)}
    assert all("data" not in r.state and r.ratchet is None for r in store.tenants())


def test_finalize_stops_on_a_failure_and_loses_nothing(store: Store, folder: Path) -> None:
    names = [f"t{i}" for i in range(5)]
    c = controller(store, make_migrations(folder, fail=frozenset({"t2"})))
    c.register(names)
    c.start("v2", percent=10)
    result = c.finalize()
    assert not result.ok and not result.completed and "finalize again" in result.summary()
    assert store.policy().default == "v1" and store.policy().rollout is not None
    assert all(consistent(store, folder, n) for n in names)


def test_discover_registers_tenants_no_router_has_served(folder: Path) -> None:
    m = make_migrations(folder)
    m.discover = lambda: ["quiet"]
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    c = controller(store, m)
    c.start("v2", percent=0)
    assert c.finalize().ok
    assert read_schema(folder, "quiet") == 3


# --- leases: exactly one runner per tenant ----------------------------------------------------


def test_a_held_lease_makes_other_runners_back_off_until_it_expires(
    store: Store, folder: Path
) -> None:
    clock = Clock()

    def die(event: str, tenant: str) -> None:
        if event == "leased":
            raise Crash

    first = controller(store, make_migrations(folder), clock=clock, lease_ttl=30, on_event=die)
    first.register(["acme"])
    first.start("v2", percent=100)
    with pytest.raises(Crash):
        first.run()
    other = controller(store, make_migrations(folder), clock=clock, lease_ttl=30)
    busy = other.migrate("acme")
    assert busy.outcome == "busy" and "another runner" in str(busy.error)
    assert state_of(store, folder, "acme") == "503"
    clock.now += 31  # the dead runner's lease frees itself
    assert other.migrate("acme").outcome == "moved"
    assert state_of(store, folder, "acme") == ("v2", 3)
    assert steps_run(folder, "acme", "up3") == 1


def test_the_heartbeat_keeps_a_long_step_s_lease(folder: Path) -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    clock = ManualClock()
    entered, release, renewed = threading.Event(), threading.Event(), threading.Event()

    def hook(event: str, tenant: str) -> None:
        if event == "renewed":
            renewed.set()

    migrations = make_migrations(folder, hold=(entered, release))
    slow = controller(store, migrations, clock=clock, lease_ttl=30, on_event=hook)
    slow.register(["acme"])
    slow.start("v2", percent=100)
    runner = threading.Thread(target=slow.run)
    runner.start()
    try:
        assert entered.wait(10)
        for _ in range(3):  # 45 s into a 30 s lease: only the heartbeat keeps it alive
            renewed.clear()
            clock.advance(15)
            assert renewed.wait(10)
        other = controller(store, make_migrations(folder), clock=clock, lease_ttl=30)
        busy = other.migrate("acme")
        assert busy.outcome == "busy" and "another runner" in str(busy.error)
    finally:
        release.set()
        runner.join()
    assert state_of(store, folder, "acme") == ("v2", 3)
    assert steps_run(folder, "acme", "up3") == 1


# --- crash injection at every point -----------------------------------------------------------


@pytest.mark.parametrize("point", ["leased", "step", "migrated", "flipped"])
def test_a_crash_at_any_point_leaves_one_consistent_side(
    store: Store, folder: Path, point: str
) -> None:
    clock = Clock()

    def die(event: str, tenant: str) -> None:
        if event == point:
            raise Crash

    c = controller(store, make_migrations(folder), clock=clock, on_event=die, lease_ttl=10)
    c.register(["acme", "bystander"])
    c.start("v2", percent=100)
    with pytest.raises(Crash):
        c.migrate("acme")
    assert consistent(store, folder, "acme")
    assert state_of(store, folder, "acme") == ("503" if point != "flipped" else ("v2", 3))
    assert state_of(store, folder, "bystander") == ("v1", 1)  # others unaffected
    clock.now += 11
    resumed = controller(store, make_migrations(folder), clock=clock).run()
    assert resumed.ok
    assert state_of(store, folder, "acme") == ("v2", 3)
    assert steps_run(folder, "acme", "up2") == 1 and steps_run(folder, "acme", "up3") == 1


# --- subprocesses on SQLite: kill -9 and ten runners at once -------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    db = tmp_path / "state.db"
    s = open_store(f"sqlite:///{db}")
    s.register_versions(["v1", "v2"], "v1")
    yield db, s
    s.close()


@pytest.mark.parametrize("point", ["leased", "mid", "migrated", "flipped"])
def test_kill_9_of_a_runner_at_any_point(
    sqlite_store: tuple[Path, Store], folder: Path, point: str
) -> None:
    db, store = sqlite_store
    router = CohortRouter(
        {"v1": version_app("v1", folder), "v2": version_app("v2", folder)},
        domains=["example.com"],
        store=store,
        refresh_interval=0,
        migrations=make_migrations(folder),
    )
    client = Client(router)

    def get(tenant: str) -> tuple[int, str]:
        response = client.get("/", headers={"Host": f"{tenant}.example.com"})
        return response.status_code, response.get_data(as_text=True)

    c = controller(store, make_migrations(folder), lease_ttl=30)
    c.register(["acme", "bystander"])
    c.start("v2", percent=100)
    assert get("acme")[0] == 200
    process = spawn(db, folder, "acme", "--crash", point)
    assert process.wait(30) == -9  # SIGKILL
    assert process.stdout is not None
    process.stdout.close()
    status, body = get("acme")
    expected_schema = {"leased": 1, "mid": 2, "migrated": 3, "flipped": 3}[point]
    assert read_schema(folder, "acme") == expected_schema
    if point == "flipped":
        assert (status, body) == (200, "v2 acme schema 3")
    else:  # mid-migration: neither version may see this data
        assert status == 503 and "MISMATCH" not in body
    assert get("bystander") == (200, "v1 bystander schema 1")
    # A runner after the lease expired resumes; the crashed step runs again, nothing else does.
    later = controller(store, make_migrations(folder), clock=lambda: time.time() + 60)
    assert later.run().ok
    assert get("acme") == (200, "v2 acme schema 3")
    assert steps_run(folder, "acme", "up2") == 1
    assert steps_run(folder, "acme", "up3") == (2 if point == "mid" else 1)


def test_kill_9_then_rollback_restores_the_old_side(
    sqlite_store: tuple[Path, Store], folder: Path
) -> None:
    db, store = sqlite_store
    c = controller(store, make_migrations(folder), clock=lambda: time.time() + 60)
    c.register(["acme"])
    c.start("v2", percent=100)
    process = spawn(db, folder, "acme", "--crash", "mid")
    assert process.wait(30) == -9
    assert process.stdout is not None
    process.stdout.close()
    assert c.rollback("acme").ok
    assert state_of(store, folder, "acme") == ("v1", 1)


def test_ten_processes_move_the_same_tenant_and_the_upgrade_runs_once(
    sqlite_store: tuple[Path, Store], folder: Path, tmp_path: Path
) -> None:
    db, store = sqlite_store
    c = controller(store, make_migrations(folder))
    c.register(["acme"])
    c.start("v2", percent=100)
    go = tmp_path / "go"
    processes = [spawn(db, folder, "acme", "--wait-for", str(go), "--slow", "0.3")]
    processes += [spawn(db, folder, "acme", "--wait-for", str(go)) for _ in range(9)]
    for p in processes:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = []
    for p in processes:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        outcomes.append(json.loads(out)["outcome"])
    assert outcomes.count("moved") == 1, outcomes
    assert set(outcomes) <= {"moved", "busy", "unchanged"}
    assert steps_run(folder, "acme", "up2") == 1 and steps_run(folder, "acme", "up3") == 1
    assert state_of(store, folder, "acme") == ("v2", 3)


# --- the router: 503 + Retry-After while a tenant migrates, traffic never sees a mismatch ----


def leave_migrating(store: Store, folder: Path) -> None:
    def die(event: str, tenant: str) -> None:
        if event == "step":
            raise Crash

    c = controller(store, make_migrations(folder), on_event=die)
    c.register(["acme", "globex"])
    c.start("v2", percent=100)
    with pytest.raises(Crash):
        c.migrate("acme")


def test_wsgi_router_answers_503_with_retry_after_while_migrating(folder: Path) -> None:
    store = MemoryStore()
    router = CohortRouter(
        {"v1": version_app("v1", folder), "v2": version_app("v2", folder)},
        domains=["example.com"],
        store=store,
        migrations=make_migrations(folder, retry_after=42),
    )
    leave_migrating(store, folder)
    client = Client(router)
    response = client.get("/", headers={"Host": "acme.example.com"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "42"
    assert "upgraded" in response.get_data(as_text=True)
    assert client.get("/", headers={"Host": "globex.example.com"}).status_code == 200


def test_asgi_router_answers_503_with_retry_after_while_migrating(folder: Path) -> None:
    store = MemoryStore()
    router = CohortRouter(
        {"v1": asgi_version("v1"), "v2": asgi_version("v2")},
        domains=["example.com"],
        store=store,
        migrations=make_migrations(folder, retry_after=9),
    )
    leave_migrating(store, folder)

    async def request(host: bytes, kind: str = "http") -> list[dict[str, Any]]:
        scope = {
            "type": kind,
            "method": "GET",
            "path": "/",
            "headers": [(b"host", host)],
            "query_string": b"",
        }
        app = communicator(router, scope)
        await app.send_input({"type": "http.request" if kind == "http" else "websocket.connect"})
        messages = [await app.receive_output(1)]
        if kind == "http":
            messages.append(await app.receive_output(1))
        await app.wait(1)
        return messages

    import asyncio

    start, body = asyncio.run(request(b"acme.example.com"))
    assert start["status"] == 503 and (b"retry-after", b"9") in start["headers"]
    assert b"upgraded" in body["body"]
    (closed,) = asyncio.run(request(b"acme.example.com", "websocket"))
    assert closed == {"type": "websocket.close", "code": 1013, "reason": "upgrading"}
    other, _ = asyncio.run(request(b"globex.example.com"))
    assert other["status"] == 200


def test_traffic_during_a_batch_never_meets_unmigrated_data(folder: Path) -> None:
    store = MemoryStore()
    router = CohortRouter(
        {"v1": version_app("v1", folder), "v2": version_app("v2", folder)},
        domains=["example.com"],
        store=store,
        refresh_interval=0,
    )
    names = [f"t{i}" for i in range(20)]
    c = controller(store, make_migrations(folder), drain=0.01)
    c.register(names)
    c.start("v2", percent=100)
    statuses: dict[int, int] = {}
    bodies: list[str] = []
    done = threading.Event()

    def traffic() -> None:
        client = Client(router)
        while not done.is_set():
            for name in names:
                response = client.get("/", headers={"Host": f"{name}.example.com"})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 500:
                    bodies.append(response.get_data(as_text=True))

    threads = [threading.Thread(target=traffic) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert c.run(concurrency=4).ok
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert bodies == [] and set(statuses) <= {200, 503}
    assert statuses.get(503, 0) > 0  # the gate was exercised
    assert all(state_of(store, folder, n) == ("v2", 3) for n in names)


# --- the batch: a thread pool with a failure limit ---------------------------------------------


def test_a_batch_keeps_to_its_concurrency_and_skips_the_rest_once_halted() -> None:
    lock = threading.Lock()
    running, peak = [0], [0]
    halts: list[str | None] = []
    gate = threading.Barrier(2)

    def move(name: str) -> TenantResult:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if name in ("t0", "t1"):
            gate.wait(10)  # both workers busy at once: the pool really runs two
        with lock:
            running[0] -= 1
        return TenantResult(name, "failed" if name in ("t2", "t3") else "moved", error="no")

    names = [f"t{i}" for i in range(10)]
    seen: list[str] = []
    result = run_batch(
        "run",
        names,
        move,
        concurrency=2,
        max_failures=1,
        progress=lambda r: seen.append(r.tenant),
        halt=halts.append,
    )
    assert peak[0] == 2
    assert halts == [result.halted] and "max_failures=1" in str(result.halted)
    done = [r.tenant for r in result.results if r.outcome != "skipped"]
    skipped = [r.tenant for r in result.results if r.outcome == "skipped"]
    assert seen == done and sorted(done + skipped) == sorted(names)
    assert skipped == names[len(names) - len(skipped) :]  # in their order, never started
    assert {"t2", "t3"} <= set(done) and skipped


def test_a_crash_in_a_batch_stops_it_and_is_raised() -> None:
    started: list[str] = []

    def move(name: str) -> TenantResult:
        started.append(name)
        if name == "t1":
            raise Crash
        return TenantResult(name, "moved")

    with pytest.raises(Crash):
        run_batch(
            "run",
            [f"t{i}" for i in range(50)],
            move,
            concurrency=1,
            max_failures=None,
            progress=None,
            halt=lambda reason: None,
        )
    assert started == ["t0", "t1"]
    with pytest.raises(ValidationError, match="concurrency"):
        run_batch("run", [], move, concurrency=0, max_failures=None, progress=None, halt=print)


# --- time is injected: a manual clock drains and settles without waiting -----------------------


def test_drain_and_settle_advance_a_manual_clock_instead_of_waiting(folder: Path) -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    clock = ManualClock()
    c = RolloutController(store, migrations=make_migrations(folder), clock=clock, drain=3600)
    assert c.drain == 3600 and c.settle > 0 and c.clock is clock
    c.register(["acme"])
    c.start("v2", percent=100)
    before, started = clock.time(), time.monotonic()
    assert c.run().moved == ["acme"]
    assert clock.time() - before >= 3600 and time.monotonic() - started < 30
    finalized = c.finalize()
    assert finalized.ok and clock.time() - before >= 3600 + c.settle

"""The rollout controller without migrations: registry, plans, preview, ratchet, rollback, finalize.

The key tests run on the memory and the SQLite store; the migration runner is in
``test_migrations.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from cohortroute import CohortRouter, ConflictError, UnknownVersionError, ValidationError
from cohortroute._clock import ManualClock
from cohortroute.decision import Decision, decide
from cohortroute.migrations import Migrations
from cohortroute.rollout import (
    RolloutController,
    lower_percent,
    parse_duration,
    parse_tenant_lines,
)
from cohortroute.store import MemoryStore, Store, open_store

from .apps import wsgi_version

TENANTS = [f"tenant{i:03d}" for i in range(300)]


# The shared stores' fixtures (skipped when their server is not running).
pytest_plugins = ("tests.services",)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param in ("redis", "postgres"):
        url = str(request.getfixturevalue(f"{request.param}_url"))
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"
    s = open_store(url)
    s.register_versions(["v1", "v2", "v3"], "v1")
    yield s
    s.close()


@pytest.fixture
def memory() -> Store:
    s = MemoryStore()
    s.register_versions(["v1", "v2", "v3"], "v1")
    return s


def controller(store: Store, **kwargs: object) -> RolloutController:
    kwargs.setdefault("settle", 0)
    kwargs.setdefault("drain", 0)
    return RolloutController(store, **kwargs)  # type: ignore[arg-type]


def served(store: Store, names: list[str] = TENANTS, now: float | None = None) -> dict[str, str]:
    """What a router would serve each tenant now."""
    policy = store.policy()
    return {n: decide(policy, store.tenant(n), "v1", now=now).version for n in names}


def on(store: Store, version: str = "v2", now: float | None = None) -> set[str]:
    return {n for n, v in served(store, now=now).items() if v == version}


# --- the registry ---------------------------------------------------------------------------


def test_register_is_batched_and_idempotent(memory: Store) -> None:
    c = controller(memory)
    before = memory.revision()
    assert c.register(TENANTS, batch_size=100) == 300
    assert memory.revision() == before + 3  # one write per batch
    assert c.register(TENANTS) == 0
    assert memory.revision() == before + 3  # known tenants cost nothing
    assert all(r.registered for r in memory.tenants())


def test_import_one_per_line_and_csv_with_tags(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "tenants.csv"
    source.write_text(
        "tenant,tags\n# a comment\n\nAcme,beta internal\nglobex\n"
        'initech,"paid-preview;beta"\nhooli,beta|internal,extra\n'
    )
    c = controller(store)
    assert c.import_tenants(source) == 4
    tags = {r.name: sorted(r.tags) for r in store.tenants()}
    assert tags == {
        "acme": ["beta", "internal"],
        "globex": [],
        "hooli": ["beta", "extra", "internal"],
        "initech": ["beta", "paid-preview"],
    }
    plain = tmp_path / "plain.txt"
    plain.write_text("globex\numbrella\n")
    assert c.import_tenants(plain) == 1


def test_import_validates_everything_before_writing(memory: Store) -> None:
    c = controller(memory)
    revision = memory.revision()
    with pytest.raises(ValidationError, match="line 3"):
        c.import_tenants(["acme", "globex", "not a tenant!"])
    assert memory.revision() == revision


def test_parse_tenant_lines_header_only_on_the_first_line() -> None:
    names, tags = parse_tenant_lines(["acme", "name"])
    assert names == ["acme", "name"] and tags == {}


def test_add_tenant_is_audited(memory: Store) -> None:
    c = controller(memory)
    assert c.add_tenant("Acme", ["beta"]) is True
    assert c.add_tenant("acme") is False
    assert memory.tenant("acme").tags == {"beta"}
    assert c.history("acme")[0].action == "tenants-register"


def test_a_large_import_is_written_in_large_batches(memory: Store) -> None:
    lines = (f"t{i}" for i in range(50_000))
    c = controller(memory)
    started = time.perf_counter()
    assert c.import_tenants(lines, batch_size=25_000) == 50_000
    assert time.perf_counter() - started < 20
    assert sum(1 for _ in memory.tenants()) == 50_000
    assert [e.action for e in memory.history(limit=3)][:2] == ["tenants-register"] * 2


# The routers' tenant registration is tested in test_registration.py.


# --- start, plans, dwell ------------------------------------------------------------------------


def test_start_validates(memory: Store) -> None:
    c = controller(memory)
    with pytest.raises(UnknownVersionError, match="known versions"):
        c.start("v9")
    with pytest.raises(ConflictError, match="already the default"):
        c.start("v1")
    with pytest.raises(ValidationError, match="strictly up"):
        c.start("v2", plan=[5, 1])
    with pytest.raises(ValidationError, match="needs a plan"):
        c.start("v2", auto=True)
    c.start("v2", plan=[1, 5])
    with pytest.raises(ConflictError, match="already running"):
        c.start("v3")


def test_advance_respects_the_dwell_unless_forced(memory: Store) -> None:
    clock = ManualClock()
    c = controller(memory, clock=clock)
    c.start("v2", plan=[1, 5, 25], every=7200)
    with pytest.raises(ConflictError, match=r"minimum dwell is 2h00m: wait 1h00m"):
        clock.advance(3600)
        c.advance()
    assert c.advance(force=True).percent == 500
    clock.advance(7200)
    assert c.advance().percent == 2500
    with pytest.raises(ConflictError, match="last step"):
        c.advance(force=True)


def test_advance_without_plan_or_while_halted_says_what_to_do(memory: Store) -> None:
    c = controller(memory)
    c.start("v2", percent=5)
    with pytest.raises(ConflictError, match="rollout set PERCENT"):
        c.advance()
    c.halt("looks bad")
    with pytest.raises(ConflictError, match=r"resume.*looks bad"):
        c.advance()
    with pytest.raises(ConflictError, match="resume it before raising"):
        c.set(10)
    c.resume()
    assert c.set(10).percent == 1000


def test_set_between_plan_steps_then_advance_goes_to_the_next_step_up(memory: Store) -> None:
    c = controller(memory)
    c.start("v2", plan=[1, 5, 25, 50, 100])
    assert c.set(10).step == 1
    assert c.advance().percent == 2500


def test_no_rollout_errors_say_how_to_start_one(memory: Store) -> None:
    with pytest.raises(ConflictError, match="rollout start VERSION"):
        controller(memory).advance()


def test_parse_duration() -> None:
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    assert parse_duration(12.5) == 12.5
    with pytest.raises(ValidationError, match="like 2h"):
        parse_duration("2 hours")


# --- preview --------------------------------------------------------------------------------


def test_preview_is_exactly_who_moves(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", plan=[5, 25, 50, 100])
    # Pins, tags and a rolled-back tenant must not count as moving.
    store.pin(TENANTS[0], "v1")
    store.pin(TENANTS[1], "v3")
    store.set_rule("beta", "v3")
    store.tag(TENANTS[2], "beta")
    c.rollback(TENANTS[3])
    for _ in range(3):
        before = served(store)
        preview = c.preview()
        c.advance()
        after = served(store)
        moved = sorted(n for n in TENANTS if before[n] != after[n])
        assert list(preview.moves) == moved
        assert preview.count == len(moved) > 0
        assert preview.considered == len(TENANTS)
        for name in TENANTS[:4]:
            assert name not in preview.moves
    assert set(preview.stays) <= set(TENANTS[:4])


def test_preview_of_a_lowering_shows_nobody_moves_back(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", percent=50)
    preview = c.preview(10)
    assert preview.moves == () and preview.count == 0
    kept = {n for n, why in preview.stays.items() if "ratchet" in why}
    assert kept and kept == on(store) - {
        n
        for n in TENANTS
        if decide(store.policy(), store.tenant(n), "v1").bucket < 1000  # type: ignore[operator]
    }


def test_preview_json_and_errors(memory: Store) -> None:
    c = controller(memory)
    c.register(TENANTS[:10])
    c.start("v2", percent=5)
    with pytest.raises(ConflictError, match="preview a percentage"):
        c.preview()
    data = c.preview("100%").to_json()
    assert data["to_percent"] == 100.0 and data["count"] == len(data["moves"])


# --- the ratchet, halt, rollback, finalize ----------------------------------------------------


def test_lowering_never_moves_anybody_back(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", percent=50)
    at_50 = on(store)
    assert 100 < len(at_50) < 200
    c.set(5)
    assert on(store) == at_50
    c.set(0)
    assert on(store) == at_50
    marked = {r.name for r in store.tenants() if r.ratchet == "v2"}
    assert marked and marked <= at_50
    name = sorted(marked)[0]
    assert "ratchet" in c.explain(name).detail
    assert c.history(name)[0].action == "ratchet"
    c.set(50)  # raising again changes nothing for them either
    assert on(store) == at_50


def test_lowering_through_the_store_keeps_the_ratchet_too(memory: Store) -> None:
    # The one lowering path takes a store, so any API lowering a rollout keeps the promise.
    c = controller(memory)
    c.register(TENANTS)
    c.start("v2", percent=50)
    at_50 = on(memory)
    stored = memory.policy().rollout
    assert stored is not None
    lower_percent(memory, stored, stored, 500, step=-1, now=0.0, actor="ops")
    assert memory.policy().rollout.percent == 500  # type: ignore[union-attr]
    assert on(memory) == at_50
    with pytest.raises(ConflictError, match="changed"):  # the stored rollout moved meanwhile
        lower_percent(memory, stored, stored, 100, step=-1, now=0.0)
    with pytest.raises(ValueError, match="lowers"):
        lower_percent(memory, stored, replace(stored, percent=100), 100, step=-1, now=0.0)


def test_halt_freezes_and_resume_continues(memory: Store) -> None:
    clock = ManualClock()
    c = controller(memory, clock=clock)
    c.register(TENANTS)
    c.start("v2", plan=[10, 50, 100], every=60, auto=True)
    clock.advance(61)
    assert c.current().percent == 5000  # type: ignore[union-attr]
    at_50 = on(memory, now=clock.time())
    halted = c.halt("error rate")
    assert halted.halted and halted.percent == 5000 and halted.halt_reason == "error rate"
    clock.advance(3600)
    assert c.current().percent == 5000  # type: ignore[union-attr]
    assert on(memory, now=clock.time()) == at_50
    c.resume()
    assert c.current().percent == 5000  # type: ignore[union-attr]
    clock.advance(61)
    assert c.current().percent == 10_000  # type: ignore[union-attr]


def test_rollback_moves_everybody_back_and_clears_the_marks(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", percent=50)
    c.set(10)
    result = c.rollback()
    assert result.ok and len(result.moved) > 100 and "ended" in result.summary()
    assert store.policy().rollout is None
    assert on(store) == set()
    assert all(r.ratchet is None for r in store.tenants())
    name = result.moved[0]
    assert c.history(name)[0].action == "rollout-rollback"


def test_rollback_one_tenant_keeps_it_on_the_default_for_this_rollout(memory: Store) -> None:
    c = controller(memory)
    c.register(TENANTS)
    c.start("v2", percent=100)
    result = c.rollback(TENANTS[5])
    assert result.ok and result.moved == [TENANTS[5]]
    assert served(memory)[TENANTS[5]] == "v1"
    assert len(on(memory)) == len(TENANTS) - 1
    memory.pin(TENANTS[6], "v2")
    with pytest.raises(ConflictError, match="unpin or untag"):
        c.rollback(TENANTS[6])


def test_finalize_makes_one_version_serve_everybody(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", percent=20)
    c.set(5)
    c.rollback(TENANTS[0])
    store.pin(TENANTS[1], "v3")  # a test account on a third version keeps its pin
    result = c.finalize()
    assert result.ok, result.summary()
    policy = store.policy()
    assert policy.default == "v2" and policy.rollout is None
    assert set(served(store, TENANTS[2:]).values()) == {"v2"}
    assert all(r.ratchet is None and "held" not in r.state for r in store.tenants())


def test_finalize_refuses_pins_and_rules_to_the_old_version_unless_forced(memory: Store) -> None:
    c = controller(memory)
    c.register(TENANTS)
    c.start("v2", percent=20)
    memory.pin(TENANTS[0], "v1")
    memory.set_rule("legacy", "v1")
    with pytest.raises(
        ConflictError, match=r"pinned to v1 \(tenant000\).*legacy.*call finalize\(force=True\)"
    ):
        c.finalize()
    assert c.finalize(force=True).ok
    assert set(served(memory).values()) == {"v2"}
    assert memory.policy().rules == ()


def test_every_move_is_in_the_tenants_history(memory: Store) -> None:
    c = controller(memory, actor="alice")
    c.register(TENANTS)
    c.start("v2", plan=[50, 100])
    name = sorted(on(memory))[0]
    entry = c.history(name)[0]
    assert entry.action == "rollout-start" and entry.actor == "alice"
    assert entry.before == "v1" and entry.after["version"] == "v2"


# --- timed plans need no scheduler: routers expire their cache at the step boundary ------------


def test_a_router_follows_a_timed_plan_without_any_write() -> None:
    store = MemoryStore()
    clock = ManualClock()
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        refresh_interval=3600,  # only the step boundary can expire the cache
        register_tenants=False,
        clock=clock,
    )
    client = Client(router)

    def version() -> str:
        return client.get("/", headers={"Host": "acme.example.com"}).get_data(as_text=True)[:2]

    c = controller(store, clock=clock)
    c.start("v2", plan=[0, 100], every=1800, auto=True)
    assert version() == "v1"
    revision = store.revision()
    clock.advance(1799)
    assert version() == "v1"
    clock.advance(1)
    assert version() == "v2"
    assert store.revision() == revision


# --- the law: nobody returns to the old version except through rollback -----------------------

PERCENTS = [0, 37, 100, 500, 2500, 5000, 10_000]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from([(), (1, 5, 25, 50, 100), (10, 100)])),
        st.tuples(st.just("advance")),
        st.tuples(st.just("set"), st.sampled_from(PERCENTS)),
        st.tuples(st.just("halt")),
        st.tuples(st.just("resume")),
        st.tuples(st.just("rollback")),
        st.tuples(st.just("rollback-one"), st.integers(0, 29)),
        st.tuples(st.just("finalize")),
        st.tuples(st.just("run")),
    ),
    max_size=14,
)
LAW_TENANTS = [f"t{i}" for i in range(30)]


def law_migrations(data: dict[str, int]) -> Migrations:
    """Versions v1..v12 whose data is at app=1..12; steps keep ``data`` honest."""
    m = Migrations()
    for k in range(1, 13):
        m.version(f"v{k}", k)

        @m.upgrade(k)
        def up(tenant: str, k: int = k) -> None:
            assert data[tenant] == k - 1, "upgrade on data at the wrong version"
            data[tenant] = k

        @m.downgrade(k)
        def down(tenant: str, k: int = k) -> None:
            assert data[tenant] == k, "downgrade on data at the wrong version"
            data[tenant] = k - 1

    return m


@pytest.mark.parametrize("gated", [False, True], ids=["plain", "gated"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_nobody_returns_to_the_old_version_except_through_rollback(
    gated: bool, ops: list[tuple[object, ...]]
) -> None:
    store = MemoryStore()
    store.register_versions([f"v{k}" for k in range(1, 13)], "v1")
    data = {t: 1 for t in LAW_TENANTS}
    c = controller(store, migrations=law_migrations(data) if gated else None)
    c.register(LAW_TENANTS)

    def look() -> dict[str, Decision]:
        policy = store.policy()
        return {t: decide(policy, store.tenant(t), "v1") for t in LAW_TENANTS}

    before = look()
    for op in ops:
        rollout = store.policy().rollout
        default = store.policy().default or "v1"
        try:
            if op[0] == "start":
                c.start(f"v{int(default[1:]) + 1}", plan=op[1])  # type: ignore[arg-type]
            elif op[0] == "advance":
                c.advance(force=True)
            elif op[0] == "set":
                c.set(op[1] / 100)  # type: ignore[operator]
            elif op[0] == "halt":
                c.halt()
            elif op[0] == "resume":
                c.resume()
            elif op[0] == "rollback":
                assert c.rollback().ok
            elif op[0] == "rollback-one":
                c.rollback(LAW_TENANTS[op[1]])  # type: ignore[call-overload]
            elif op[0] == "finalize":
                assert c.finalize().ok
            elif op[0] == "run":
                assert c.run().ok
        except ConflictError:
            continue  # refused (no rollout, halted, last step...): nothing may have moved
        after = look()
        for t in LAW_TENANTS:
            if gated and not after[t].maintenance:  # served version and data always agree
                assert data[t] == int(after[t].version[1:]), (t, op, after[t])
            if rollout is None or before[t].version != rollout.candidate:
                continue
            back = after[t].version != rollout.candidate
            allowed = op[0] == "rollback" or (op[0] == "rollback-one" and t == f"t{op[1]}")
            assert not back or allowed, (t, op, before[t], after[t])
        if op[0] == "finalize":
            policy = store.policy()
            assert policy.rollout is None and policy.default == rollout.candidate  # type: ignore[union-attr]
            assert {d.version for d in after.values()} == {policy.default}
        before = after

"""decide() for the rollout controller: the ratchet, rolled-back tenants, gating, timed plans."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohortroute.bucketing import bucket
from cohortroute.decision import Reason, decide, intended
from cohortroute.policy import (
    STATE_LEASE,
    STATE_MIGRATION,
    Lease,
    MigrationState,
    Policy,
    Rollout,
    TenantRecord,
    next_step_index,
    rollout_from_json,
    rollout_to_json,
)

SALT = "v2:test"


def policy(percent: int, **rollout: object) -> Policy:
    return Policy(
        default="v1",
        versions=frozenset({"v1", "v2", "v3"}),
        rollout=Rollout("v2", percent, SALT, **rollout),  # type: ignore[arg-type]
    )


def tenant_with_bucket(low: int, high: int) -> str:
    """A tenant name whose bucket under SALT is in [low, high)."""
    for i in range(100_000):
        name = f"t{i}"
        if low <= bucket(SALT, name) < high:
            return name
    raise AssertionError("no such tenant")  # pragma: no cover


def test_the_ratchet_keeps_a_tenant_on_the_candidate_below_the_percentage() -> None:
    name = tenant_with_bucket(5000, 6000)
    assert decide(policy(500), TenantRecord(name), "v1").version == "v1"
    kept = decide(policy(500), TenantRecord(name, ratchet="v2"), "v1")
    assert kept.version == "v2" and kept.reason is Reason.ROLLOUT
    assert "ratchet" in kept.detail and "rollback" in kept.detail


def test_a_ratchet_for_another_version_means_nothing() -> None:
    name = tenant_with_bucket(5000, 6000)
    assert decide(policy(500), TenantRecord(name, ratchet="v3"), "v1").version == "v1"


def test_pins_and_tags_beat_the_ratchet() -> None:
    name = tenant_with_bucket(0, 100)
    record = TenantRecord(name, ratchet="v2", pin="v3")
    assert decide(policy(500), record, "v1").version == "v3"
    tagged = Policy(default="v1", rules=(("beta", "v3"),), rollout=Rollout("v2", 500, SALT))
    assert decide(tagged, TenantRecord(name, tags=frozenset({"beta"})), "v1").version == "v3"


def test_a_rolled_back_tenant_stays_on_the_default_for_that_rollout_only() -> None:
    name = tenant_with_bucket(0, 100)
    held = TenantRecord(name, state={"held": SALT}, ratchet="v2")
    decision = decide(policy(10_000), held, "v1")
    assert decision.version == "v1" and "rolled back" in decision.detail
    other = TenantRecord(name, state={"held": "another-rollout"})
    assert decide(policy(10_000), other, "v1").version == "v2"


# --- gating -------------------------------------------------------------------------------------


def test_gated_candidate_waits_for_the_tenants_data() -> None:
    name = tenant_with_bucket(0, 100)
    gated = policy(500, gated=True)
    waiting = decide(gated, TenantRecord(name), "v1")
    assert waiting.version == "v1" and "not migrated" in waiting.detail
    assert intended(gated, TenantRecord(name), "v1").version == "v2"
    migrated = TenantRecord(name, state={"data": "v2"}, ratchet="v2")
    assert decide(gated, migrated, "v1").version == "v2"


def test_gated_migrated_data_wins_over_a_lowered_percentage_and_pins() -> None:
    name = tenant_with_bucket(9000, 10_000)
    migrated = TenantRecord(name, state={"data": "v2"})
    assert decide(policy(0, gated=True), migrated, "v1").version == "v2"
    pinned = replace(migrated, pin="v1")
    decision = decide(policy(0, gated=True), pinned, "v1")
    assert decision.version == "v2" and "rollback" in decision.detail
    unmigrated_pin = TenantRecord(name, pin="v2")
    assert decide(policy(0, gated=True), unmigrated_pin, "v1").version == "v1"


@pytest.mark.parametrize("status", ["migrating", "broken"])
@pytest.mark.parametrize("data", [None, "v2"])
def test_migrating_tenants_are_in_maintenance(status: str, data: str | None) -> None:
    state: dict[str, object] = {"migration": {"status": status}}
    if data:
        state["data"] = data
    decision = decide(policy(500, gated=True), TenantRecord("acme", state=state), "v1")
    assert decision.maintenance
    assert decision.version == (data or "v1")


@pytest.mark.parametrize("status", ["ok", "failed"])
def test_finished_migrations_are_not_maintenance(status: str) -> None:
    record = TenantRecord("acme", state={"migration": {"status": status}})
    assert not decide(policy(500, gated=True), record, "v1").maintenance


def test_without_gating_migration_state_is_ignored() -> None:
    record = TenantRecord("acme", state={"migration": {"status": "migrating"}})
    assert not decide(policy(500), record, "v1").maintenance


def test_an_override_beats_maintenance() -> None:
    record = TenantRecord("acme", state={"migration": {"status": "migrating"}})
    decision = decide(policy(500, gated=True), record, "v1", override="v3")
    assert decision.version == "v3" and not decision.maintenance


# --- timed plans -------------------------------------------------------------------------------

PLAN = (100, 500, 2500, 10_000)


def timed(start: float = 1000.0, **kw: object) -> Rollout:
    args: dict[str, object] = {
        "plan": PLAN,
        "step": 0,
        "every": 60.0,
        "step_started_at": start,
        "auto": True,
    }
    args.update(kw)
    return Rollout("v2", 100, SALT, **args)  # type: ignore[arg-type]


def test_a_timed_plan_moves_on_by_the_clock() -> None:
    r = timed()
    assert r.at(1059.9).percent == 100
    assert r.at(1060).percent == 500 and r.at(1060).step_started_at == 1060
    assert r.at(1125).percent == 2500 and r.at(1125).step_started_at == 1120
    assert r.at(99_999).percent == 10_000 and r.at(99_999).step_started_at == 1180
    assert r.next_change(1000) == 1060
    assert r.next_change(1130) == 1180
    assert r.next_change(5000) is None


def test_halted_or_untimed_plans_do_not_move() -> None:
    assert timed(halted=True).at(99_999).percent == 100
    assert timed(auto=False).at(99_999).percent == 100
    assert timed(halted=True).next_change(1000) is None


def test_decide_uses_the_clock_for_timed_plans() -> None:
    name = tenant_with_bucket(1000, 2000)
    p = Policy(default="v1", rollout=timed())
    assert decide(p, TenantRecord(name), "v1", now=1000).version == "v1"
    assert decide(p, TenantRecord(name), "v1", now=1130).version == "v2"


@given(st.floats(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=10_000))
def test_timed_plans_only_go_up_with_time(a: float, b: float) -> None:
    r = timed(start=0.0)
    early, late = sorted((a, b))
    assert r.at(early).percent <= r.at(late).percent
    assert r.at(late).at(late) == r.at(late)  # placing twice changes nothing


def test_next_step_index() -> None:
    assert next_step_index(PLAN, 0) == 0
    assert next_step_index(PLAN, 100) == 1
    assert next_step_index(PLAN, 300) == 1
    assert next_step_index(PLAN, 10_000) is None


def test_new_rollout_fields_round_trip_and_old_json_still_reads() -> None:
    r = timed(gated=True, halt_reason="3 tenants failed")
    assert rollout_from_json(rollout_to_json(r)) == r
    old = {"candidate": "v2", "percent": 5, "salt": "s"}
    assert rollout_from_json(old) == Rollout("v2", 5, "s", started_at=0.0)


# --- the typed migration state keeps the shapes stores already hold ----------------------------

STORED_MIGRATIONS = [
    {
        "status": "migrating",
        "from": "v1",
        "to": "v2",
        "started": 10.0,
        "steps": ["app 1 -> 2", "app 2 -> 3"],
        "hold": None,
    },
    {"status": "ok", "from": "v1", "to": "v2", "started": 10.0, "finished": 12.5, "duration": 2.5},
    {
        "status": "failed",
        "from": "v1",
        "to": "v2",
        "started": 10.0,
        "finished": 11.0,
        "duration": 1.0,
        "error": "step app 2 -> 3 failed: RuntimeError: no",
    },
]


@pytest.mark.parametrize("stored", STORED_MIGRATIONS, ids=lambda d: str(d["status"]))
def test_migration_state_round_trips_what_stores_hold(stored: dict[str, object]) -> None:
    state = MigrationState.from_json(stored)
    assert state is not None and state.to_json() == stored
    record = TenantRecord("acme", state={STATE_MIGRATION: stored})
    assert record.migration == state and record.migration_status == stored["status"]


def test_lease_round_trips_and_unreadable_state_never_blocks() -> None:
    lease = Lease("host:1:ab", 100.0)
    assert Lease.from_json(lease.to_json()) == lease
    assert lease.held_at(99.9) and not lease.held_at(100.0)
    assert TenantRecord("acme", state={STATE_LEASE: lease.to_json()}).lease == lease
    assert Lease.from_json({"owner": "x", "expires": "soon"}) == Lease("x", 0.0)
    assert Lease.from_json([1]) is None and MigrationState.from_json("migrating") is None
    assert TenantRecord("acme", state={STATE_MIGRATION: [1]}).migration_status is None

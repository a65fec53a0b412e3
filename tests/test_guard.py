"""The guard acting on a rollout: breakers, cohort rollback or halt, hold, lease, gate."""

from __future__ import annotations

from cohortroute.guard import GuardConfig
from cohortroute.guard.lease import current

from .guard_world import World


def test_one_incompatible_tenant_is_sent_back_and_the_rollout_paused_not_rolled_back() -> None:
    world = World()
    reached = world.start(25)
    broken = reached[0]
    guard = world.guard()
    actions: list[str] = []
    for _ in range(20):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        actions += guard.check().actions
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted  # paused, not rolled back
    assert world.store.tenant(broken).held_salt == rollout.salt
    assert world.controller.explain(broken).version == "v1"
    assert all(world.controller.explain(t).version == "v2" for t in reached[1:])
    assert any(a.startswith(f"sent {broken} back") for a in actions)
    notes = [e for e in world.store.history(broken) if e.action == "guard-send-back"]
    assert notes and notes[0].actor == "guard"
    assert notes[0].after["line"].startswith(f"{broken}: 5xx")
    assert notes[0].after["breakers"][0]["tenant"] == broken
    moves = [e for e in world.store.history(broken) if e.action == "rollback"]
    assert moves and moves[0].actor == "guard"


def test_a_cohort_regression_is_rolled_back_with_the_evidence_audited() -> None:
    world = World()
    world.start(25)
    guard = world.guard()
    for _ in range(60):
        world.minutes(1, error=lambda t, v: 0.02 if v == "v2" else 0.002)
        if guard.check().actions:
            break
    assert world.store.policy().rollout is None
    entry = next(e for e in world.store.history() if e.action == "guard-rollback")
    assert entry.actor == "guard"
    assert entry.after["line"].startswith("rolled back: 5xx ")
    assert entry.after["trigger"] == "5xx"
    evidence = entry.after["metrics"][0]
    assert evidence["observed"] > 3 * evidence["expected"] and evidence["p"] < 0.01 / 3
    assert any(e.action == "rollout-rollback" and e.actor == "guard" for e in world.store.history())


def test_a_metric_configured_to_halt_halts() -> None:
    world = World()
    world.start(25)
    guard = world.guard(config=GuardConfig(actions={"slow": "halt"}))
    for _ in range(40):
        world.minutes(1, slow=lambda t, v: 0.3 if v == "v2" else 0.01)
        if guard.check().actions:
            break
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted
    assert rollout.halt_reason is not None and "slow" in rollout.halt_reason
    assert any(e.action == "guard-halt" for e in world.store.history())


def test_no_traffic_holds_and_never_fails() -> None:
    world = World()
    world.start(25)
    world.clock.advance(3600)
    check = world.guard().check()
    assert check.assessment is not None
    assert check.assessment.verdict.kind == "no-traffic"
    assert check.actions == []
    assert "no traffic" in check.line
    rollout = world.store.policy().rollout
    assert rollout is not None and not rollout.halted


def test_a_global_incident_is_not_the_candidates_fault() -> None:
    world = World()
    world.start(25)
    guard = world.guard()
    world.minutes(20)
    world.minutes(15, error=lambda t, v: 0.02)  # everybody, both versions, 10x
    world.minutes(10)
    assert guard.check().actions == []
    assert world.store.policy().rollout is not None


def test_only_the_lease_holder_acts_and_an_expired_lease_is_taken_over() -> None:
    world = World()
    world.start(25)
    world.minutes(2)
    first, second = world.guard("a"), world.guard("b")
    assert first.check().leader
    assert not second.check().leader
    held = current(world.store)
    assert held is not None and held.holder == "a"
    world.clock.advance(first.lease_ttl + 1)
    assert second.check().leader
    assert not first.check().leader
    second.release()
    assert current(world.store) is None
    assert first.check().leader


def test_renewing_the_lease_writes_only_once_per_half_term() -> None:
    world = World()
    world.start(25)
    guard = world.guard()
    for _ in range(6):
        guard.check()
        world.clock.advance(30)
    takes = [e for e in world.store.history() if e.action.startswith("guard-lease")]
    assert len(takes) == 2  # taken, then renewed once past half of its 180 s


def test_the_gate_extends_a_timed_step_until_the_step_has_enough_traffic() -> None:
    world = World(traffic=2)
    world.start(10, plan=[10, 50, 100], every=600, auto=True)
    guard = world.guard()
    world.minutes(9)
    check = guard.check()
    assert check.assessment is not None and not check.assessment.verdict.gate.met
    assert any("promotion gate needs" in a for a in check.actions)
    rollout = world.store.policy().rollout
    assert rollout is not None
    assert rollout.at(world.clock.time() + 120).percent == 1000  # still 10 %, not 50 %
    entry = next(e for e in world.store.history() if e.action == "guard-extend" and e.after)
    assert entry.actor == "guard"


def test_a_guard_without_a_rollout_does_nothing() -> None:
    world = World()
    check = world.guard().check()
    assert check.leader and check.assessment is None
    assert check.line == "no rollout to guard"

"""The guard acting on a rollout: breakers, cohort rollback or halt, hold, lease, gate."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from cohortroute.guard import GuardConfig
from cohortroute.guard.lease import current
from cohortroute.rollout import RolloutController
from cohortroute.signals import open_sink
from cohortroute.signals.model import SignalRow
from cohortroute.store import open_store

from .cli_inproc import cli
from .guard_world import World


def test_one_incompatible_tenant_is_sent_back_and_the_rollout_paused_not_rolled_back() -> None:
    world = World()
    reached = world.start(25)
    broken = reached[0]
    guard = world.guard()
    actions: list[str] = []
    for _ in range(35):  # the breaker discounts a tenant's worst 15 minutes as a burst
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
    world.minutes(60, only="v1")  # signals recorded, none on the candidate
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


def test_rollout_run_runs_the_guard_and_stops_when_it_rolled_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    names = [f"t{i}" for i in range(20)]
    store.register_tenants(names)
    assert cli("rollout", "start", "v2", "--percent", "50", store=url).code == 0
    controller = RolloutController(store)
    now = int(time.time() // 60)
    sink = open_sink(store)
    rows = [
        SignalRow(now - m, t, "v1", 1000, (0, 998, 0, 0, 2)) for m in range(1, 60) for t in names
    ]
    for t in names:
        version = controller.explain(t).version
        errors = 100 if version == "v2" else 2
        rows.append(SignalRow(now, t, version, 1000, (0, 1000 - errors, 0, 0, errors)))
    sink.add(rows)
    sink.close()
    skipped = cli("rollout", "run", "--once", "--no-guard", store=url)
    assert skipped.code == 0 and "guard" not in skipped.out
    result = cli("rollout", "run", "--once", store=url)
    assert result.code == 1, result.err
    assert "guard: rolled back v2: rolled back: 5xx" in result.out
    assert store.policy().rollout is None
    assert "rolled back: 5xx" in cli("report", store=url).out.splitlines()[0]


def test_run_checks_every_interval_and_gives_the_lease_up_when_stopped() -> None:
    world = World()
    world.start(25)
    world.minutes(2)
    guard = world.guard()
    seen: list[float] = []
    guard.run(stop=lambda: len(seen) >= 3, report=lambda check: seen.append(world.clock.time()))
    assert [b - a for a, b in itertools.pairwise(seen)] == [60.0, 60.0]
    assert current(world.store) is None

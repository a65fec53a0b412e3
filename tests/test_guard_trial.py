"""Regressions from the new-user trial of the guard: a blind guard (no signals) never holds a
timed plan, the gate says when it is out of reach, pinned tenants and the overflow row are not
the rollout's, a failed send-back is not retried, the report of an ended rollout."""

from __future__ import annotations

import math

import pytest

from cohortroute.errors import CohortRouteError
from cohortroute.guard import GuardConfig, assess
from cohortroute.report import build, render
from cohortroute.signals.model import OVERFLOW_TENANT, SignalRow

from .guard_world import World

BLIND = (
    "no signals recorded since the rollout started: routers need signals=True; "
    "the plan is not gated"
)


def test_without_signals_the_guard_says_so_once_and_the_timed_plan_moves_on() -> None:
    world = World()
    world.start(10, plan=[10, 50, 100], every=120, auto=True)
    guard = world.guard()
    lines, actions = [], []
    for _ in range(8):  # nobody records signals: no rows since the start
        check = guard.check()
        lines.append(check.line)
        actions += check.actions
        world.clock.advance(60)
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.at(world.clock.time()).percent == 10_000
    assert lines[-1] == f"holding: {BLIND}"
    assert actions.count(f"holding: {BLIND}") == 1
    said = [e for e in world.store.history(None, 500) if e.action == "guard-blind"]
    assert len(said) == 1 and said[0].actor == "guard" and BLIND in said[0].after["line"]
    a = world.guard().assess()
    assert a is not None
    assert render(build(a, world.store.history(None, 500)))[0] == f"holding: {BLIND}"


def test_with_signals_but_no_candidate_traffic_the_step_is_still_held() -> None:
    world = World()
    world.start(10, plan=[10, 50, 100], every=120, auto=True)
    guard = world.guard()
    for _ in range(6):
        world.minutes(1, only="v1")
        guard.check()
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.at(world.clock.time()).percent == 1000
    assert not any(e.action == "guard-blind" for e in world.store.history(None, 500))


def test_a_gate_out_of_reach_says_it_cannot_be_estimated_and_why() -> None:
    # 100 stable requests per tenant: 0.2 expected errors at most each, 4 for all 20 tenants
    world = World(tenants=20, traffic=1, history_minutes=100)
    world.start(50, plan=[50, 100], every=600, auto=True)
    guard = world.guard()
    world.minutes(9)
    check = guard.check()
    assert check.assessment is not None
    gate = check.assessment.verdict.gate
    assert not gate.met and gate.more_requests is None
    assert gate.reason is not None and "too little baseline" in gate.reason
    assert gate.reachable is not None and gate.reachable < gate.needed
    extend = [a for a in check.actions if "promotion gate needs" in a]
    assert extend and "too little baseline" in extend[0] and "~" not in extend[0]
    assert "too little baseline" in check.line


def test_the_more_requests_estimate_is_enough_to_meet_the_gate() -> None:
    world = World(traffic=2)
    world.start(25)
    world.minutes(3)
    a = world.guard().assess()
    assert a is not None
    more = a.verdict.gate.more_requests
    assert more is not None and more > 0
    per_minute = sum(e.requests for e in a.evidence.tenants.values()) / 3
    world.minutes(math.ceil(more / per_minute))
    after = world.guard().assess()
    assert after is not None and after.verdict.gate.met


def _broken_outsiders(world: World, minutes: int) -> None:
    """qa pinned to v2 and the overflow row, both with 30% errors on v2."""
    for _ in range(minutes):
        world.minutes(1)
        minute = int(world.clock.time() // 60) - 1
        world.sink.add(
            [
                SignalRow(minute, name, "v2", 200, (0, 140, 0, 0, 60))
                for name in ("qa", OVERFLOW_TENANT)
            ]
        )


def test_pinned_tenants_and_the_overflow_row_are_not_the_rollouts_to_judge_or_move() -> None:
    world = World()
    world.store.register_tenants(["qa"])
    world.sink.add(
        [
            SignalRow(int(world.clock.time() // 60) - 100 + m, "qa", "v1", 200, (0, 200, 0, 0, 0))
            for m in range(0, 100, 10)
        ]
    )
    world.store.pin("qa", "v2")
    world.start(25)
    guard = world.guard()
    actions: list[str] = []
    for _ in range(40):
        _broken_outsiders(world, 1)
        actions += guard.check().actions
    assert actions == []
    rollout = world.store.policy().rollout
    assert rollout is not None and not rollout.halted
    assert not any(e.action.startswith("guard-send") for e in world.store.history(None, 5000))
    a = world.guard().assess()
    assert a is not None and a.verdict.pinned == ("qa",)
    text = render(build(a, world.store.history(None, 5000)))
    assert not any(OVERFLOW_TENANT in line for line in text if "guard" in line)
    from cohortroute.cli.report import notes

    assert "pinned to the candidate: not the rollout's to move: qa" in notes(a)


def test_a_failed_send_back_is_tried_once_per_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    broken = world.start(25)[0]
    guard = world.guard()
    calls: list[str | None] = []

    def refuse(tenant: str | None = None, **kw: object) -> None:
        calls.append(tenant)
        raise CohortRouteError("refused")

    monkeypatch.setattr(guard.controller, "rollback", refuse)
    actions: list[str] = []
    for _ in range(50):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        actions += guard.check().actions
    assert calls == [broken]
    assert sum(a.startswith(f"could not send {broken} back") for a in actions) == 1
    notes = [e for e in world.store.history(broken, 5000) if e.action == "guard-send-back"]
    assert len(notes) == 1


def test_the_report_of_an_ended_rollout_shows_its_last_percent_and_who_ended_it() -> None:
    world = World()
    world.start(10, plan=[10, 50, 100])
    world.controller.advance(force=True)
    world.minutes(2)
    world.controller.rollback()
    a = assess(world.store, world.sink, GuardConfig(), world.clock.time())
    assert a is not None
    data = build(a, world.store.history(None, 5000))
    assert data["rollout"]["percent"] == 50
    assert data["verdict"].startswith("rolled back by ops: ")
    assert data["state"] == "rolled back"  # the JSON state keeps its documented values


def test_a_held_timed_plan_then_finalized_reports_100_percent() -> None:
    world = World()
    world.start(10, plan=[10, 50, 100], every=600, auto=True)
    world.minutes(11)
    world.controller.finalize()
    a = assess(world.store, world.sink, GuardConfig(), world.clock.time())
    assert a is not None and a.subject.ended == "finalized"
    assert build(a, [])["rollout"]["percent"] == 100

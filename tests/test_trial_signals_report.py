"""The text report's promotion gate line says why it cannot estimate the traffic it needs, as
docs/guard.md promises (the JSON had the reason; the text said only "needs more requests")."""

from __future__ import annotations

from cohortroute.report import build, render

from .guard_world import World


def test_the_gate_line_says_why_it_cannot_say_how_much_more() -> None:
    world = World(tenants=20, traffic=1, history_minutes=100)
    world.start(50)
    world.minutes(9)
    a = world.guard().assess()
    assert a is not None
    data = build(a, [])
    assert data["gate"]["more_requests"] is None and data["gate"]["reason"]
    gate_lines = [line for line in render(data) if line.startswith("promotion gate:")]
    assert len(gate_lines) == 1
    assert "too little baseline" in gate_lines[0]
    assert data["gate"]["reason"] in gate_lines[0]


def test_the_gate_line_with_an_estimate_is_unchanged() -> None:
    world = World(traffic=1)
    world.start(25)
    world.minutes(3)
    a = world.guard().assess()
    assert a is not None
    data = build(a, [])
    more = data["gate"]["more_requests"]
    assert more is not None
    gate_line = next(line for line in render(data) if line.startswith("promotion gate:"))
    assert gate_line.startswith(f"promotion gate: not met -- needs ~{more:,} more requests")
    assert "cannot" not in gate_line


def test_a_finalized_rollout_reports_its_own_tenants_not_the_whole_fleet() -> None:
    # finalized at the start of a minute: that minute's rows hold every tenant, now on the
    # candidate as the new default; they were reported (and judged) as the rollout's tenants
    world = World(tenants=10)
    reached = world.start(50)
    world.minutes(10)
    world.controller.finalize()
    world.minutes(3)
    a = world.guard().assess()
    assert a is not None and a.subject.ended == "finalized"
    data = build(a, world.store.history(None, 5000))
    candidate = data["versions"][0]
    assert candidate["role"] == "candidate"
    assert {t["tenant"] for t in candidate["tenants"]} == set(reached)
    # ten minutes of the rollout, and its own tenants' rows of the minute it ended in
    assert candidate["requests"] == 11 * world.traffic * len(reached)
    assert set(a.evidence.tenants) == set(reached)

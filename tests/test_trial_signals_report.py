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

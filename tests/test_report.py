"""The report: the verdict line first, then per version and tenant, worst first; text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from cohortroute.guard import GuardConfig, assess
from cohortroute.report import NO_ROLLOUT, build, p95, render
from cohortroute.signals import open_sink
from cohortroute.store import open_store

from .cli_inproc import cli
from .guard_world import World


def _regressed_world() -> tuple[World, list[str]]:
    world = World()
    reached = world.start(25)
    guard = world.guard()
    for _ in range(60):
        world.minutes(1, error=lambda t, v: 0.02 if v == "v2" else 0.002)
        if guard.check().actions:
            break
    return world, reached


def test_after_a_rollback_the_verdict_comes_first_and_names_the_evidence() -> None:
    world, reached = _regressed_world()
    a = assess(world.store, world.sink, GuardConfig(), world.clock.time())
    assert a is not None and a.subject.ended == "rolled back"
    data = build(a, world.store.history(None, 5000))
    lines = render(data)
    assert lines[0] == data["verdict"]
    assert lines[0].startswith("rolled back: 5xx ")
    assert "own baseline" in lines[0] and " vs " in lines[0] and "without " in lines[0]
    assert "p = " in lines[0] or "p < 1e-12" in lines[0]
    assert "p = <" not in lines[0]  # "p < 1e-12", not "p = < 1e-12"
    assert any("guard-rollback" in line for line in lines)
    candidate = data["versions"][0]
    assert candidate["version"] == "v2" and candidate["role"] == "candidate"
    assert {t["tenant"] for t in candidate["tenants"]} == set(reached)
    scores = [t["evidence"]["score"] for t in candidate["tenants"]]
    assert scores == sorted(scores, reverse=True)  # worst first
    assert candidate["error_ratio"] > 3
    assert candidate["p95"] == 0.05


def test_a_broken_tenant_is_named_first_with_the_action_taken() -> None:
    world = World()
    reached = world.start(25)
    broken = reached[-1]
    guard = world.guard()
    for _ in range(30):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        guard.check()
    a = world.guard().assess()
    assert a is not None
    data = build(a, world.store.history(None, 5000))
    assert data["state"] == "halted"
    first = data["versions"][0]["tenants"][0]
    assert first["tenant"] == broken
    assert first["action"] == "guard-send-back" and first["held"]
    assert first["error_ratio"] > 20
    text = "\n".join(render(data))
    assert f"sent back: {broken}" in data["verdict"] or broken in text


def test_the_gate_says_how_much_more_traffic_it_needs() -> None:
    world = World(traffic=1)
    # A fixed salt: a random one put only 4 of the 40 tenants in the 25 % now and then, whose
    # 600-request baselines put the gate out of reach (which the report then says instead).
    reached = world.start(25, salt="s0")
    assert len(reached) >= 8
    world.minutes(3)
    a = world.guard().assess()
    assert a is not None
    data = build(a, [])
    assert not data["gate"]["met"] and data["gate"]["more_requests"] > 0
    assert any(line.startswith("promotion gate: not met -- needs ~") for line in render(data))
    assert "promotion gate: needs ~" in data["verdict"]


def test_p95_comes_from_the_merged_histogram() -> None:
    assert p95([0] * 15) is None
    assert p95([100] + [0] * 14) == 0.005
    assert p95([90, 0, 0, 10] + [0] * 11) == 0.05
    assert p95([0] * 14 + [5]) == float("inf")


def test_cli_report_text_and_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    store.register_tenants(["acme", "beta"])
    assert cli("report", store=url).out.strip() == NO_ROLLOUT
    assert cli("rollout", "start", "v2", "--percent", "50", store=url).code == 0
    open_sink(store).close()
    text = cli("report", store=url)
    assert text.code == 0 and text.out.startswith("holding: no traffic on v2")
    data = json.loads(cli("report", "--json", store=url).out)
    assert data["state"] == "holding" and data["rollout"]["candidate"] == "v2"
    assert set(data) == {"verdict", "state", "rollout", "evidence", "gate", "actions", "versions"}
    guard = cli("guard", "--once", "--json", store=url)
    assert guard.code == 0 and json.loads(guard.out)["kind"] == "no-traffic"
    assert cli("guard", "--once", "--action", "cpu=halt", store=url).code == 2


def test_a_halted_rollout_says_why_in_json_and_text() -> None:
    # After the guard's breaker paused the rollout, the report said "halted" and never why.
    world = World()
    reached = world.start(25)
    broken = reached[-1]
    guard = world.guard()
    for _ in range(30):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        guard.check()
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted and rollout.halt_reason
    a = world.guard().assess()
    assert a is not None
    data = build(a, world.store.history(None, 5000))
    assert data["rollout"]["halt_reason"] == rollout.halt_reason
    assert f"-- halted: {rollout.halt_reason}" in render(data)[1]
    world.controller.resume()
    a = world.guard().assess()
    assert a is not None and build(a, [])["rollout"]["halt_reason"] is None

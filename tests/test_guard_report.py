"""What the report and the guard say: tenants without a baseline, one line per extension, a
neutral headline when nothing is wrong, the JSON without a rollout, who holds the lease."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cohortroute.cli.report import REPORT, _tenant_notes, _text
from cohortroute.guard.explain import metric_clause
from cohortroute.guard.verdict import MetricVerdict
from cohortroute.report import build, guard_actions
from cohortroute.store import open_store

from .cli_inproc import cli
from .guard_world import World


def test_tenants_without_a_baseline_are_named_with_what_the_guard_cannot_do() -> None:
    world = World(tenants=10)
    world.store.register_tenants(["fresh"])  # no stable history before the rollout
    world.names.append("fresh")
    world.start(100)
    world.minutes(30, error=lambda t, v: 0.3 if t == "fresh" else 0.002)
    a = world.guard().assess()
    assert a is not None and a.verdict.no_baseline == ("fresh",)
    assert a.verdict.to_json()["no_baseline"] == ["fresh"]
    data = build(a, world.store.history(None, 5000))
    _tenant_notes(a, data)
    assert "no baseline for 1 tenant: the guard cannot act on it yet" in data["verdict"]
    row = next(t for t in data["versions"][0]["tenants"] if t["tenant"] == "fresh")
    assert row["note"] == "no baseline: the guard cannot act on it yet"
    lines = _text(a, data)
    assert "no baseline for 1 tenant: the guard cannot act on it yet (fresh)" in lines
    table = next(line for line in lines if line.strip().startswith("fresh "))
    assert table.rstrip().endswith("no baseline")


def test_each_extension_is_one_guard_action_with_its_line() -> None:
    world = World(traffic=2)
    world.start(25, plan=[25, 50, 100], every=600, auto=True)
    guard = world.guard()
    world.minutes(9)
    assert any("promotion gate needs" in a for a in guard.check().actions)
    actions = guard_actions(world.store.history(None, 5000), 0)
    assert [a["action"] for a in actions] == ["guard-extend"]
    assert actions[0]["line"].startswith("step held ")
    assert any(e.action == "rollout-extend" for e in world.store.history(None, 5000))


def test_nothing_wrong_reads_no_regression() -> None:
    world = World()
    world.start(25)
    world.minutes(20, error=lambda t, v: 0.0, slow=lambda t, v: 0.0)  # better than baseline
    line = world.guard().check().line
    assert line.startswith("holding: no regression on v2: 5xx "), line
    assert " own baseline over " in line and "p = " not in line


def test_errors_where_none_were_expected_read_plainly() -> None:
    m = MetricVerdict("5xx", 69, 0.0, 1.0, 1, "acme", 0.0, 0.0, False)
    assert metric_clause(m) == "5xx above an own baseline of none, 69 vs 0.0 expected over 1 tenant"


def test_report_json_without_a_rollout_has_every_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    data = json.loads(cli("report", "--json", store=url).out)
    assert list(data) == [key for key, _ in REPORT.keys]
    assert data["verdict"].startswith("no rollout")
    assert all(value is None for key, value in data.items() if key != "verdict")


def test_a_guard_that_is_not_the_leader_says_who_is_and_until_when() -> None:
    world = World()
    world.start(25)
    world.guard("host-a:1").check()
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(world.clock.time() + 180))
    line = world.guard("host-b:2").check().line
    assert line == f"host-a:1 holds the guard's lease until {until}; waiting"

"""The guard end to end: 2 gunicorn workers record signals, the guard rolls a bad candidate back.

For each store (SQLite, Redis, PostgreSQL): every tenant has a day of history on the stable
version (seeded into the signal sink, so nothing waits for real minutes); a rollout sends half
the tenants to ``v2``, which fails one request in five for three of them (tests/e2e/guard_app.py).
Real traffic goes through gunicorn with 2 workers; stopping gunicorn gracefully makes each worker
flush its counts at exit. Then ``cohortroute guard --once`` must roll the rollout back from those
flushed aggregates alone, ``cohortroute report --json`` must name the failing tenants (and no
healthy one) as the culprits, and the audit log must hold the guard's evidence.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cohortroute.cli import run
from cohortroute.rollout import RolloutController
from cohortroute.signals import open_sink
from cohortroute.signals.model import SignalRow
from cohortroute.store import open_store

from .servers import bin_path, free_port, get, serve

pytest.register_assert_rewrite("tests.services")

pytest_plugins = ("tests.services",)
pytestmark = pytest.mark.e2e

TENANTS = [f"t{i:02d}" for i in range(12)]
SALT = "fleet-a"  # a fixed salt: the same tenants reach the candidate on every run
FAILING_COUNT = 3
REQUESTS_PER_TENANT = 40
HISTORY_STEP = 20  # one seeded row every 20 minutes of the previous day
FAST_BUCKET = 3  # the 50 ms histogram bucket: the seeded history is not slow, nor is the traffic


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    value: str = request.getfixturevalue(f"{request.param}_url")
    return value


def cli(url: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--store", url, "--actor", "ops", *args], out=out, err=err)
    assert code == 0, (args, code, err.getvalue())
    return out.getvalue()


def seed_history(url: str, start_minute: int) -> None:
    """A day of stable history for every tenant: 100 requests a row, 1 server error in 500."""
    store = open_store(url)
    try:
        rows = []
        for i, minute in enumerate(range(start_minute - 24 * 60 + 60, start_minute, HISTORY_STEP)):
            for tenant in TENANTS:
                errors = 1 if i % 5 == 0 else 0
                histogram = [0] * 15
                histogram[FAST_BUCKET] = 100
                status = (0, 100 - errors, 0, 0, errors)
                rows.append(
                    SignalRow(minute, tenant, "v1", 100, status, histogram=tuple(histogram))
                )
        sink = open_sink(store)
        sink.add(rows)
        sink.close()
    finally:
        store.close()


def start_rollout(url: str) -> list[str]:
    """Register the versions and tenants, start ``v2`` at 50%; returns the candidate tenants."""
    store = open_store(url)
    try:
        store.register_versions(["v1", "v2"], default="v1")
        store.register_tenants(TENANTS)
        controller = RolloutController(store, actor="ops")
        controller.start("v2", percent=50, salt=SALT)
        return [t for t in TENANTS if controller.explain(t).version == "v2"]
    finally:
        store.close()


def send_traffic(port: int) -> list[tuple[str, int, str, int]]:
    """``REQUESTS_PER_TENANT`` GETs for every tenant from 4 threads: (tenant, status, version,
    pid) each."""
    work = [t for t in TENANTS for _ in range(REQUESTS_PER_TENANT)]
    answers: list[tuple[str, int, str, int]] = []
    lock = threading.Lock()

    def client(part: list[str]) -> None:
        for tenant in part:
            status, body = get(port, f"{tenant}.example.com")
            version, _, pid = body.split()
            with lock:
                answers.append((tenant, status, version, int(pid)))

    threads = [threading.Thread(target=client, args=(work[i::4],), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "the client threads hung"
    return answers


def test_a_candidate_failing_some_tenants_is_rolled_back_from_the_fleets_signals(url: str) -> None:
    start_minute = int(time.time() // 60)
    seed_history(url, start_minute)
    candidates = start_rollout(url)
    assert 2 + FAILING_COUNT <= len(candidates) < len(TENANTS), candidates
    failing = candidates[:FAILING_COUNT]
    healthy = [t for t in candidates if t not in failing]

    port = free_port()
    command = [
        bin_path("gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "tests.e2e.guard_app:app",
    ]
    env = {"COHORTROUTE_STORE": url, "GUARD_FAILING": ",".join(failing)}
    with serve(command, port, env=env) as master:
        answers = send_traffic(port)
    # serve() stopped gunicorn with SIGTERM: each worker flushed its counts as it exited.
    assert master.returncode == 0, master.returncode

    assert len(answers) == len(TENANTS) * REQUESTS_PER_TENANT
    assert len({a[3] for a in answers}) == 2, "both workers should have answered"
    assert {a[0] for a in answers if a[2] == "v2"} == set(candidates)
    sent_errors = Counter(a[0] for a in answers if a[1] == 500)
    assert set(sent_errors) == set(failing), sent_errors
    for tenant in failing:  # one in five per worker: about 20% of the tenant's requests
        assert 0.15 <= sent_errors[tenant] / REQUESTS_PER_TENANT <= 0.3, sent_errors

    # Every request reached the store, counted once, from both workers' flushes.
    store = open_store(url)
    try:
        sink = open_sink(store)
        rows = [r for r in sink.rows(start_minute) if r.requests and r.tenant]
        sink.close()
        flushed = Counter[str]()
        flushed_errors = Counter[str]()
        for r in rows:
            flushed[r.tenant] += r.requests
            flushed_errors[r.tenant] += r.status[4]
        assert flushed == Counter(dict.fromkeys(TENANTS, REQUESTS_PER_TENANT)), flushed
        assert flushed_errors == sent_errors

        # The guard, as cron runs it: one check.
        verdict = json.loads(cli(url, "guard", "--once", "--json"))
        assert verdict["leader"] is True
        assert verdict["kind"] == "rollback", verdict
        assert any(line.startswith("rolled back v2") for line in verdict["actions"]), verdict
        policy = store.policy()
        assert policy.rollout is None and policy.default == "v1"

        # The report names the failing tenants, worst first, and no healthy one.
        report: dict[str, Any] = json.loads(cli(url, "report", "--json"))
        assert report["state"] == "rolled back", report["verdict"]
        assert report["verdict"].startswith("rolled back: 5xx "), report["verdict"]
        assert report["evidence"]["trigger"] == "5xx"
        five = next(m for m in report["evidence"]["metrics"] if m["metric"] == "5xx")
        assert five["observed"] == sum(sent_errors.values()) and five["regressed"] is True
        assert five["without"] in failing
        candidate = next(v for v in report["versions"] if v["version"] == "v2")
        ranked = [t["tenant"] for t in candidate["tenants"]]
        assert set(ranked[:FAILING_COUNT]) == set(failing), ranked
        by_name = {t["tenant"]: t for t in candidate["tenants"]}
        for tenant in failing:
            assert by_name[tenant]["errors"] == sent_errors[tenant]
            assert by_name[tenant]["error_ratio"] > 10, by_name[tenant]
        for tenant in healthy:
            assert by_name[tenant]["errors"] == 0, by_name[tenant]
            assert by_name[tenant]["evidence"]["score"] <= 0, by_name[tenant]
        acted = [a["action"] for a in report["actions"]]
        assert "guard-rollback" in acted, report["actions"]

        # The audit log holds the evidence, by the guard, before its rollback.
        entries = store.history(None, 100)
        noted = next(e for e in entries if e.action == "guard-rollback")
        assert noted.actor == "guard" and noted.tenant is None
        evidence = noted.after
        assert isinstance(evidence, dict)
        assert evidence["line"] == report["verdict"]
        assert evidence["kind"] == "rollback" and evidence["trigger"] == "5xx"
        logged = next(m for m in evidence["metrics"] if m["metric"] == "5xx")
        assert logged["observed"] == sum(sent_errors.values())
        assert logged["p"] < 0.01 / 3
        rolled = next(e for e in entries if e.action == "rollout-rollback")
        assert rolled.actor == "guard" and rolled.revision > noted.revision
    finally:
        store.close()

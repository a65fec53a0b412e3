"""Signals end to end: real gunicorn, two workers, one store (SQLite, Redis, PostgreSQL).

Requests to several tenants go through both workers; after a graceful shutdown (each worker
writes what it still counts at exit) the rows in the sink are exactly what was sent.
"""

from __future__ import annotations

import pathlib
from collections import Counter

import pytest

from cohortroute.signals import open_sink
from cohortroute.store import open_store
from tests.e2e.servers import bin_path, free_port, get, serve

pytest_plugins = ("tests.services",)
pytestmark = pytest.mark.e2e


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", marks=pytest.mark.redis, id="redis"),
        pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    ]
)
def url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """An empty store for the fleet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    found: str = request.getfixturevalue(f"{request.param}_url")
    return found


SENT = {"acme": 12, "globex": 7, "broken": 9, "crashing": 5, "": 3}
EXPECTED_STATUS = {
    ("acme", "v1"): (0, 12, 0, 0, 0),
    ("globex", "v1"): (0, 7, 0, 0, 0),
    ("broken", "v2"): (0, 0, 0, 0, 9),
    ("crashing", "v2"): (0, 0, 0, 0, 5),
    ("", "v1"): (0, 3, 0, 0, 0),
}


def test_two_gunicorn_workers_flush_exactly_what_was_served(url: str) -> None:
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1", actor="test")
    store.pin("broken", "v2")
    store.pin("crashing", "v2")
    store.close()
    port = free_port()
    command = [
        bin_path("gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
        "tests.signals.gunicorn_app:app",
    ]
    statuses: Counter[int] = Counter()
    with serve(command, port, env={"COHORTROUTE_STORE": url}):
        for tenant, count in SENT.items():
            host = f"{tenant}.example.com" if tenant else "example.com"
            for _ in range(count):
                statuses[get(port, host)[0]] += 1
    assert statuses == {200: 22, 500: 14}
    sink = open_sink(url)
    try:
        rows = sink.rows(0)
    finally:
        sink.close()
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        total = totals.setdefault((row.tenant, row.version), [0, 0, 0, 0, 0, 0, 0])
        for i, value in enumerate((row.requests, *row.status, row.exceptions)):
            total[i] += value
    assert {key: tuple(value[1:6]) for key, value in totals.items()} == EXPECTED_STATUS
    assert {key: value[0] for key, value in totals.items()} == {
        key: sum(status) for key, status in EXPECTED_STATUS.items()
    }
    assert totals[("crashing", "v2")][6] == 5 and totals[("broken", "v2")][6] == 0

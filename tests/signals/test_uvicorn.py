"""Signals end to end under real uvicorn: every request is in the store after a graceful stop.

uvicorn's workers (``--workers 2``) and its single process end a graceful SIGTERM or SIGINT by
re-raising the signal with its default action, so nothing registered with ``atexit`` runs: the
router writes its counts when the server's lifespan shutdown completes instead.
"""

from __future__ import annotations

import pathlib
import signal
from collections import Counter

import pytest

from cohortroute.signals import open_sink
from cohortroute.store import open_store
from tests.e2e.servers import bin_path, free_port, get, serve

pytestmark = pytest.mark.e2e

SENT = {"acme": 12, "globex": 7, "broken": 9, "": 3}
EXPECTED = {("acme", "v1"): 12, ("globex", "v1"): 7, ("broken", "v2"): 9, ("", "v1"): 3}


@pytest.mark.parametrize(
    ("workers", "signum"),
    [
        pytest.param(2, signal.SIGTERM, id="workers2-sigterm"),
        pytest.param(2, signal.SIGINT, id="workers2-sigint"),
        pytest.param(1, signal.SIGTERM, id="single-sigterm"),
    ],
)
def test_uvicorn_writes_every_request_at_graceful_shutdown(
    tmp_path: pathlib.Path, workers: int, signum: int
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1", actor="test")
    store.pin("broken", "v2")
    store.close()
    port = free_port()
    command = [
        bin_path("uvicorn"),
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "tests.signals.uvicorn_app:app",
    ]
    statuses: Counter[int] = Counter()
    with serve(command, port, env={"COHORTROUTE_STORE": url}) as process:
        for tenant, count in SENT.items():
            host = f"{tenant}.example.com" if tenant else "example.com"
            for _ in range(count):
                statuses[get(port, host)[0]] += 1
        process.send_signal(signum)
        process.wait(timeout=30)
    assert statuses == {200: 22, 500: 9}
    sink = open_sink(url)
    try:
        rows = sink.rows(0)
    finally:
        sink.close()
    totals: Counter[tuple[str, str]] = Counter()
    for row in rows:
        totals[(row.tenant, row.version)] += row.requests
    assert dict(totals) == EXPECTED

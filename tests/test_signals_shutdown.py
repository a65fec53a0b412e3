"""What is counted at shutdown: the ASGI router writes it when lifespan shutdown completes (after
the versions' own shutdowns), and a write that fails at close or at exit says what it loses."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from cohortroute import CohortRouter, SignalsConfig
from cohortroute._clock import ManualClock
from cohortroute._types import Receive, Scope, Send
from cohortroute.router import _exit
from tests.apps import asgi_version
from tests.signals.helpers import RecordingSink


def asgi_router(sink: RecordingSink, versions: dict[str, Any]) -> Any:
    return CohortRouter(
        versions,
        domains=["example.com"],
        clock=ManualClock(start=0.0),
        signals=SignalsConfig(sink=sink, flush_interval=3600),
        register_tenants=False,
    )


def test_lifespan_shutdown_writes_the_counts_after_the_versions_shut_down() -> None:
    sink = RecordingSink()
    events: list[str] = []
    original_add = sink.add

    def add(rows: Any) -> None:
        events.append("signals written")
        original_add(rows)

    sink.add = add  # type: ignore[method-assign]
    app = asgi_router(sink, {"v1": asgi_version("v1", events)})
    with TestClient(app) as client:
        for tenant in ("acme", "acme", "globex"):
            assert client.get("/", headers={"Host": f"{tenant}.example.com"}).status_code == 200
        assert sink.rows(0) == []  # an hour's flush interval: nothing written yet
    assert {k: row.requests for k, row in sink.totals().items()} == {
        ("acme", "v1"): 2,
        ("globex", "v1"): 1,
    }
    assert events == ["v1:startup", "v1:shutdown", "signals written"]
    app.close()


def _counted(sink: RecordingSink) -> Any:
    app = asgi_router(sink, {"v1": asgi_version("v1")})
    with TestClient(app) as client:
        sink.down = True
        for tenant in ("a", "b", "b", "c"):
            client.get("/", headers={"Host": f"{tenant}.example.com"})
    return app


def test_a_failed_write_at_shutdown_says_the_rows_may_be_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING, logger="cohortroute.signals.recorder"):
        app = _counted(sink)
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "could not write 3 signal rows (4 requests) at close" in m
        and "lost if the process ends now" in m
        for m in messages
    ), messages
    assert not any("retrying in" in m for m in messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cohortroute.signals.recorder"):
        _exit.flush_all()  # what atexit runs
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "could not write 3 signal rows (4 requests) at exit" in m and m.endswith("they are lost")
        for m in messages
    ), messages
    assert not any("retrying in" in m for m in messages)
    sink.down = False
    app.close()


def test_a_standalone_asgi_signals_wrapper_writes_at_lifespan_shutdown() -> None:
    from cohortroute import Signals, open_store

    sink = RecordingSink()
    events: list[str] = []

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].rpartition(".")[2]
                events.append(f"v2:{kind}")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"v2"})

    app = Signals(
        bare,
        version="v2",
        store=open_store("memory://"),
        config=SignalsConfig(sink=sink, flush_interval=3600),
        domains=["example.com"],
        clock=ManualClock(start=0.0),
    )
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/", headers={"Host": "acme.example.com"}).status_code == 200
        assert sink.rows(0) == []
    assert {k: row.requests for k, row in sink.totals().items()} == {("acme", "v2"): 3}
    assert events == ["v2:startup", "v2:shutdown"]

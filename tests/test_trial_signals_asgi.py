"""ASGI responses finished by an extension message are counted with their own status: Starlette's
FileResponse ends with ``http.response.pathsend`` under a server offering that extension
(Granian), and ``http.response.zerocopysend`` has ``more_body`` like a body message. Both were
counted as 5xx ("a response never finished")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cohortroute import open_store
from cohortroute._clock import ManualClock
from cohortroute.signals import Signals, open_sink


def _file_app(final: list[dict[str, Any]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for message in final:
            await send(message)

    return app


def _call(app: Any, extensions: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "headers": [(b"host", b"acme.example.com")],
        "http_version": "1.1",
        "method": "GET",
        "path": "/report.pdf",
        "query_string": b"",
        "extensions": extensions,
    }
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize(
    ("extensions", "final"),
    [
        ({"http.response.pathsend": {}}, [{"type": "http.response.pathsend", "path": "/r.pdf"}]),
        (
            {"http.response.zerocopysend": {}},
            [
                {"type": "http.response.zerocopysend", "file": 3, "more_body": True},
                {"type": "http.response.zerocopysend", "file": 3, "more_body": False},
            ],
        ),
    ],
)
def test_a_response_finished_by_an_extension_is_counted_as_sent(
    extensions: dict[str, Any], final: list[dict[str, Any]]
) -> None:
    store = open_store("memory://")
    app = Signals(
        _file_app(final), version="v1", store=store, domains=["example.com"], clock=ManualClock()
    )
    try:
        sent = _call(app, extensions)
        assert [m["type"] for m in sent[1:]] == [m["type"] for m in final]
        app.flush()
        rows = open_sink(store).rows(0)
        assert [(r.tenant, r.requests, r.status, r.exceptions) for r in rows] == [
            ("acme", 1, (0, 1, 0, 0, 0), 0)
        ]
    finally:
        app.close()

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


def _streaming_app(start: bool) -> Any:
    """Like Starlette's StreamingResponse: stops streaming and returns once the client is gone."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    return app


def _disconnecting_call(app: Any) -> None:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "headers": [(b"host", b"acme.example.com")],
        "method": "GET",
        "path": "/events",
        "query_string": b"",
    }
    asyncio.run(app(scope, receive, send))


@pytest.mark.parametrize(("start", "column"), [(True, 1), (False, 3)])
def test_a_client_gone_mid_stream_is_not_a_server_error(start: bool, column: int) -> None:
    # an SSE stream the browser closes: the app sees http.disconnect and returns; under WSGI
    # the same stream counts with its status, under ASGI it was a 5xx
    store = open_store("memory://")
    app = Signals(
        _streaming_app(start), version="v1", store=store, domains=["example.com"],
        clock=ManualClock(),
    )  # fmt: skip
    try:
        _disconnecting_call(app)
        app.flush()
        (row,) = open_sink(store).rows(0)
        expected = [0] * 5
        expected[column] = 1  # 2xx as started; 4xx (nginx's 499) when nothing was started
        assert (row.requests, row.status, row.exceptions) == (1, tuple(expected), 0)
    finally:
        app.close()


def _returns_early() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    return app


def test_an_app_returning_mid_response_while_connected_is_still_a_5xx() -> None:
    store = open_store("memory://")
    wrapped = Signals(
        _returns_early(), version="v1", store=store, domains=["example.com"], clock=ManualClock()
    )
    try:
        _call(wrapped, {})
        wrapped.flush()
        (row,) = open_sink(store).rows(0)
        assert row.status == (0, 0, 0, 0, 1)
    finally:
        wrapped.close()

"""Websockets through the ASGI router, found by trying them: the build's handshake headers
(a Set-Cookie) reach the client, and its close reason goes along with its close code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cohortroute.upstream import Upstream
from tests.apps import communicator
from tests.test_upstream_asgi import make
from tests.upstream_helpers import serving


async def closing_build(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts with a cookie, then closes with 4001 "bye" at the first message."""
    assert scope["type"] == "websocket"
    await receive()
    headers = [(b"set-cookie", b"ws-session=1; Path=/"), (b"x-build", b"v2")]
    await send({"type": "websocket.accept", "headers": headers})
    await receive()
    await send({"type": "websocket.close", "code": 4001, "reason": "bye"})


async def _talk(router: Any) -> list[dict[str, Any]]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"acme.example.com")],
        "subprotocols": [],
        "client": ("10.0.0.9", 5000),
    }
    comm = communicator(router, scope)
    await comm.send_input({"type": "websocket.connect"})
    seen = [await comm.receive_output(5)]
    await comm.send_input({"type": "websocket.receive", "text": "hello"})
    seen.append(await comm.receive_output(5))
    await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(5)
    return seen


def test_the_builds_accept_headers_and_close_reason_reach_the_client(tmp_path: Path) -> None:
    with serving(closing_build, unix_path=str(tmp_path / "ws.sock")) as url:
        upstream = Upstream(url)
        router = make(upstream)
        try:
            accept, close = asyncio.run(_talk(router))
        finally:
            router.close()
            upstream.close()
    assert accept["type"] == "websocket.accept"
    headers = dict(accept.get("headers") or [])
    assert headers.get(b"set-cookie") == b"ws-session=1; Path=/"
    assert headers.get(b"x-build") == b"v2"
    names = {name for name, _ in accept.get("headers") or []}
    assert not names & {b"upgrade", b"connection", b"sec-websocket-accept", b"date", b"server"}
    assert close == {"type": "websocket.close", "code": 4001, "reason": "bye"}

"""Forwarding a websocket to an upstream (ASGI router only), over the ``websockets`` library.

The upstream handshake happens before the client's is accepted, so the client's chosen
subprotocol is the one the build picked, and a build that is down or refuses the socket is
answered before the client's opens: an HTTP 502 when the server offers the ASGI
``websocket.http.response`` extension (uvicorn, hypercorn), else a close before accepting
(which servers send as HTTP 403). Then messages are relayed both ways
until either side closes; its close code is passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from .._types import Receive, Scope, Send
from ..store._urls import redact
from .asgi import _DECISION_KEY, forwarded_headers, target
from .errors import client_body, why
from .headers import WEBSOCKET_HANDSHAKE

if TYPE_CHECKING:
    from .target import Upstream

log = logging.getLogger(__name__)

#: The largest message relayed (the client's server bounds what it accepts the same way).
MAX_MESSAGE = 16 * 1024 * 1024
#: Close code for "the server acting as a gateway got an invalid response" (RFC 6455 registry).
BAD_GATEWAY = 1014


async def _open(upstream: Upstream, scope: Scope) -> Any:
    from websockets.asyncio.client import connect, unix_connect

    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in forwarded_headers(upstream, scope)
        if name not in WEBSOCKET_HANDSHAKE
    ]
    host = next((v for n, v in scope["headers"] if n == b"host"), b"localhost").decode("latin-1")
    address = upstream.address
    if not upstream.preserve_host:
        host = address.netloc
    uri = f"ws://{host}{address.prefix}{target(scope)}"
    options: dict[str, Any] = {
        "additional_headers": headers,
        "subprotocols": scope.get("subprotocols") or None,
        "open_timeout": upstream.connect_timeout,
        "max_size": MAX_MESSAGE,
        "compression": None,
        "user_agent_header": None,
    }
    if address.socket_path is not None:
        return await unix_connect(address.socket_path, uri, **options)
    tcp = address.netloc.rsplit(":", 1)
    port = int(tcp[1]) if len(tcp) == 2 and tcp[1].isdigit() else 80
    return await connect(uri, host=tcp[0].strip("[]"), port=port, **options)


async def refuse(upstream: Upstream, scope: Scope, send: Send, exc: Exception) -> None:
    """Answer a websocket whose upstream could not be opened: 502 (or a close), logged."""
    decision = scope.get(_DECISION_KEY)
    version = decision.version if decision is not None else "?"
    _status, what = why(exc)
    log.warning(
        "websocket to upstream %s for version %s failed to open: it %s: %s",
        redact(str(upstream.address)),
        version,
        what,
        exc,
    )
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": BAD_GATEWAY})
        return
    body = client_body(502, version).encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "websocket.http.response.start", "status": 502, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def forward_websocket(upstream: Upstream, scope: Scope, receive: Receive, send: Send) -> None:
    """Relay the websocket in ``scope`` to ``upstream`` until either side closes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        remote = await _open(upstream, scope)
    except Exception as exc:  # any failure to open is the gateway's failure to report
        await refuse(upstream, scope, send, exc)
        return
    await send({"type": "websocket.accept", "subprotocol": remote.subprotocol})

    async def from_client() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await remote.close(message.get("code", 1000))
                return
            if message.get("text") is not None:
                await remote.send(message["text"])
            elif message.get("bytes") is not None:
                await remote.send(message["bytes"])

    async def from_upstream() -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for data in remote:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        code = remote.close_code if remote.close_code not in (None, 1005, 1006) else 1000
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": code})

    tasks = [asyncio.ensure_future(from_client()), asyncio.ensure_future(from_upstream())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await remote.close()

"""Forwarding ASGI requests to an upstream over httpx's pooled asynchronous client.

The request body is sent as the server receives it and the response relayed piece by piece,
so neither is held whole; websockets go to :mod:`.websocket`. A client is bound to the event
loop that made its connections, so one is kept per loop (a server runs one; tests run many).
The ASGI app answers its own lifespan conversation: shutdown closes the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from .._types import Receive, Scope, Send
from ..decision import Decision
from .errors import failure
from .headers import has_body, request_headers, response_headers

if TYPE_CHECKING:
    from .target import Upstream

log = logging.getLogger(__name__)

_DECISION_KEY = "cohortroute.decision"  # router.base.DECISION_KEY; not imported: base imports us


class ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


def target(scope: Scope) -> str:
    """The request target (path and query) of ``scope`` as the client sent it."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else _quoted(scope.get("root_path", "") + scope["path"])
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _quoted(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/;=,:@!$&'()*+~")


def forwarded_headers(upstream: Upstream, scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers to send upstream for ``scope`` (HTTP or websocket)."""
    incoming: list[tuple[bytes, bytes]] = list(scope["headers"])
    host = next((value for name, value in incoming if name == b"host"), b"")
    client = scope.get("client")
    scheme = str(scope.get("scheme") or "http")
    return request_headers(
        incoming,
        client=client[0] if client else None,
        scheme={"ws": "http", "wss": "https"}.get(scheme) or scheme,
        host=host,
        decision=scope.get(_DECISION_KEY),
        upstream_host=None if upstream.preserve_host else upstream.address.netloc.encode(),
    )


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


class UpstreamASGI:
    """The ASGI app forwarding to one :class:`~cohortroute.upstream.Upstream`."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for other in [old for old in self._clients if old.is_closed()]:
                del self._clients[other]
            upstream = self.upstream
            transport = httpx.AsyncHTTPTransport(
                uds=upstream.address.socket_path, limits=upstream.limits(), retries=0
            )
            client = httpx.AsyncClient(
                transport=transport, timeout=upstream.timeout(), follow_redirects=False
            )
            client.headers.clear()  # no User-Agent, Accept... of httpx's own
            self._clients[loop] = client
        return client

    def forget_clients(self) -> None:
        """Drop every client without closing it (after a fork: the sockets are the parent's)."""
        self._clients = {}

    async def aclose(self) -> None:
        """Close the running loop's pooled connections."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            from .websocket import forward_websocket

            await forward_websocket(self.upstream, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = self.upstream
        decision: Decision | None = scope.get(_DECISION_KEY)
        headers = forwarded_headers(upstream, scope)
        content = _body(receive) if has_body(scope["headers"]) else None
        client = self.client()
        try:
            request = client.build_request(
                scope["method"],
                upstream.address.base_url + target(scope),
                headers=headers,
                content=content,
            )
            response = await client.send(request, stream=True)
        except ClientGone:
            return
        except httpx.TransportError as exc:
            version = decision.version if decision is not None else "?"
            status, _title, text = failure(version, str(upstream.address), exc)
            body = text.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers(response.headers.raw),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

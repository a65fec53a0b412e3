"""Forwarding ASGI requests to an upstream over httpx's pooled asynchronous client.

The request body is sent as the server receives it and the response relayed piece by piece,
so neither is held whole; websockets go to :mod:`.websocket`. A client is bound to the event
loop that made its connections, so one is kept per loop (a server runs one; tests run many);
asyncio's and trio's both work (httpx runs on either through anyio), a loop being keyed by its
asyncio loop object or its trio token. The ASGI app answers its own lifespan conversation:
shutdown closes the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Hashable
from typing import TYPE_CHECKING

import anyio
import httpx

from .._types import Receive, Scope, Send
from ..decision import Decision
from ._lease import Lender, Lent
from .errors import failure, send_again
from .headers import has_body, no_cookie_jar, request_headers, response_headers

if TYPE_CHECKING:
    from .target import Upstream

log = logging.getLogger(__name__)

_DECISION_KEY = "cohortroute.decision"  # router.base.DECISION_KEY; not imported: base imports us

#: Closings scheduled on other loops, kept until done (a loop holds its tasks only weakly).
_closing: set[asyncio.Future[None]] = set()


def current_loop() -> Hashable:
    """The running event loop's key: the asyncio loop, or the trio run's token."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio (the only other loop httpx and anyio run on)
        import trio

        return trio.lowlevel.current_trio_token()


def close_on_loop(loop: Hashable, client: httpx.AsyncClient) -> None:
    """Close ``client`` on ``loop`` (its own), from any thread; a loop that is over already
    took its connections with it."""
    if isinstance(loop, asyncio.AbstractEventLoop):
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_start_closing, client)
        return
    import trio

    with contextlib.suppress(trio.RunFinishedError):
        loop.run_sync_soon(trio.lowlevel.spawn_system_task, client.aclose)  # type: ignore[attr-defined]


def loop_is_over(loop: Hashable) -> bool:
    """Whether ``loop`` (a key of :func:`current_loop`) has ended, its connections with it."""
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop.is_closed()
    import trio

    try:
        loop.run_sync_soon(_nothing)  # type: ignore[attr-defined]
    except trio.RunFinishedError:
        return True
    return False


def _nothing() -> None:
    pass


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


class _Request:
    """Whether the request body has been read to its end (then ``receive()`` is free to wait
    for the client's disconnect)."""

    def __init__(self, read: bool) -> None:
        self.read = read


async def _body(
    receive: Receive, request: _Request, first: bytes = b"", more: bool = True
) -> AsyncIterator[bytes]:
    """The request body as it is received (after ``first``, a piece received already, and
    only that when ``more`` is False); marks ``request`` read at its end."""
    if first:
        yield first
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if body:
            yield body
        more = bool(message.get("more_body", False))
    request.read = True


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` (the relay of the response) once the client has disconnected: servers
    drop what is sent after that without an error, so an endless stream would go on.

    Once the body is read, ``receive()`` waits for the disconnect. The request's message is
    still queued when a bodiless request's was never asked for, so one other message is
    skipped; a second ends the watch (a server not keeping to the protocol).
    """
    for _ in range(2):
        if (await receive())["type"] == "http.disconnect":
            scope.cancel()
            return


class UpstreamASGI:
    """The ASGI app forwarding to one :class:`~cohortroute.upstream.Upstream`."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._clients: Lender[Hashable, httpx.AsyncClient] = Lender()

    def _new_client(self) -> httpx.AsyncClient:
        upstream = self.upstream
        transport = httpx.AsyncHTTPTransport(
            uds=upstream.address.socket_path, limits=upstream.limits(), retries=0
        )
        client = httpx.AsyncClient(
            transport=transport,
            timeout=upstream.timeout(),
            follow_redirects=False,
            cookies=no_cookie_jar(),
        )
        client.headers.clear()  # no User-Agent, Accept... of httpx's own
        return client

    def _borrow(self) -> Lent[httpx.AsyncClient]:
        """The running loop's pooled client (made on first use), counted as in use."""
        loop = current_loop()
        if self._clients.peek(loop) is None:
            # Loops that are gone (tests run many) cannot close their clients any more.
            self._clients.retire(loop_is_over)
        return self._clients.borrow(loop, self._new_client)

    async def _give_back(self, lent: Lent[httpx.AsyncClient]) -> None:
        retired = self._clients.give_back(lent)
        if retired is not None:  # closed while this request ran: it was the last one
            await retired.aclose()

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (made on first use)."""
        lent = self._borrow()
        self._clients.give_back(lent)
        return lent.client

    def forget_clients(self) -> None:
        """Drop every client without closing it (after a fork: the sockets are the parent's)."""
        self._clients.forget()

    async def aclose(self) -> None:
        """Close the running loop's pooled connections (once its requests in flight end)."""
        loop = current_loop()
        for _loop, client in self._clients.retire(lambda key: key is loop):
            await client.aclose()

    def close(self) -> None:
        """Close the upstream's pools (see :meth:`Upstream.close`); from any thread."""
        self.upstream.close()

    def close_clients(self) -> None:
        """Close every loop's pooled connections, each on its own loop (from any thread)."""
        for loop, client in self._clients.retire():
            close_on_loop(loop, client)

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
        content: AsyncIterator[bytes] | None = None
        request = _Request(read=True)
        if has_body(scope["headers"]):
            request.read = False
            content = _body(receive, request)
        elif scope.get("http_version") not in ("1.0", "1.1"):
            # HTTP/2 and 3 end a body with the stream: one without a length may still come.
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            first, more = bytes(message.get("body", b"")), bool(message.get("more_body"))
            if first or more:
                request.read = False
                content = _body(receive, request, first, more)
        lent = self._borrow()
        try:
            await self._forward(
                lent.client, scope, receive, send, (decision, request), headers, content
            )
        finally:
            await self._give_back(lent)

    async def _forward(
        self,
        client: httpx.AsyncClient,
        scope: Scope,
        receive: Receive,
        send: Send,
        decided: tuple[Decision | None, _Request],
        headers: list[tuple[bytes, bytes]],
        content: AsyncIterator[bytes] | None,
    ) -> None:
        upstream = self.upstream
        decision, sent = decided
        try:
            request = client.build_request(
                scope["method"],
                upstream.address.base_url + target(scope),
                headers=headers,
                content=content,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                if not send_again(request.method, content is not None, exc):
                    raise
                log.info(
                    "cohortroute: %s closed a kept-alive connection; sending again",
                    decision.version if decision is not None else "?",
                )
                response = await client.send(request, stream=True)
        except ClientGone:
            return
        except Exception as exc:  # any failure to connect is the gateway's 502
            # (an unexpected one is logged with its traceback by failure(), once)
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
            async with anyio.create_task_group() as relay:
                if sent.read:  # else receive() is the body's still (an early answer)
                    relay.start_soon(_until_disconnect, receive, relay.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                relay.cancel_scope.cancel()
        finally:
            await response.aclose()


def _start_closing(client: httpx.AsyncClient) -> None:
    """On the client's own loop: close it in a task kept until it is done."""
    task = asyncio.ensure_future(client.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)

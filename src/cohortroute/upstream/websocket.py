"""Forwarding a websocket to an upstream (ASGI router only): ``websockets``' sans-I/O protocol
over an anyio stream, so it runs under asyncio and trio alike.

The upstream handshake happens before the client's is accepted, so the client's chosen
subprotocol is the one the build picked, and a build that is down or refuses the socket is
answered before the client's opens: an HTTP 502 when the server offers the ASGI
``websocket.http.response`` extension (uvicorn, hypercorn), else a close before accepting
(which servers send as HTTP 403). Then messages are relayed both ways until either side
closes; its close code is passed on. An ``https://`` upstream is reached over TLS. The build's
pings are answered; the router sends none of its own (the client's server does, to the client).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.abc

from .._types import Receive, Scope, Send
from ..store._urls import redact
from .asgi import _DECISION_KEY, forwarded_headers, target
from .errors import client_body, why
from .headers import WEBSOCKET_HANDSHAKE, response_headers

if TYPE_CHECKING:
    from .target import Upstream

log = logging.getLogger(__name__)

#: The largest message relayed (the client's server bounds what it accepts the same way).
MAX_MESSAGE = 16 * 1024 * 1024
#: Close code for "the server acting as a gateway got an invalid response" (RFC 6455 registry).
BAD_GATEWAY = 1014
_CHUNK = 64 * 1024


class Remote:
    """The websocket to the build: the protocol's state and the stream its bytes go over."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: Any) -> None:
        self.stream = stream
        self.protocol = protocol
        self.events: list[Any] = []  # received, not yet relayed
        self.accept_headers: list[tuple[bytes, bytes]] = []  # the build's, for the client
        self._writing = anyio.Lock()  # both directions write (pongs and close replies too)

    async def flush(self) -> None:
        """Send what the protocol has queued (an empty piece means end of stream: skipped,
        the stream is closed when the relay ends)."""
        async with self._writing:
            for data in self.protocol.data_to_send():
                if data:
                    await self.stream.send(data)

    async def receive(self) -> bool:
        """Read from the build into :attr:`events`; False once its stream has ended."""
        try:
            data = await self.stream.receive(_CHUNK)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.protocol.receive_eof()
            self.events += self.protocol.events_received()
            return False
        self.protocol.receive_data(data)
        self.events += self.protocol.events_received()
        await self.flush()
        return True


async def _connect(upstream: Upstream) -> anyio.abc.ByteStream:
    address = upstream.address
    if address.socket_path is not None:
        return await anyio.connect_unix(address.socket_path)
    parts = urlsplit(address.base_url)
    tls = parts.scheme == "https"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if tls else 80)
    if tls:
        return await anyio.connect_tcp(host, port, tls=True, tls_hostname=host)
    return await anyio.connect_tcp(host, port)


async def _open(upstream: Upstream, scope: Scope) -> Remote:
    """Connect and shake hands with the build; raises what went wrong."""
    from websockets.client import ClientProtocol
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    host = next((v for n, v in scope["headers"] if n == b"host"), b"localhost").decode("latin-1")
    address = upstream.address
    if not upstream.preserve_host:
        host = address.netloc
    protocol = ClientProtocol(
        parse_uri(f"ws://{host}{address.prefix}{target(scope)}"),
        subprotocols=scope.get("subprotocols") or None,
        max_size=MAX_MESSAGE,
    )
    request = protocol.connect()
    for name, value in forwarded_headers(upstream, scope):
        if name not in WEBSOCKET_HANDSHAKE:
            request.headers[name.decode("latin-1")] = value.decode("latin-1")
    with anyio.fail_after(upstream.connect_timeout):
        remote = Remote(await _connect(upstream), protocol)
        try:
            protocol.send_request(request)
            await remote.flush()
            while not any(isinstance(event, Response) for event in remote.events):
                if not await remote.receive():
                    break
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            for event in remote.events:
                if isinstance(event, Response):
                    remote.accept_headers = _accept_headers(event.headers.raw_items())
            remote.events = [e for e in remote.events if not isinstance(e, Response)]
        except BaseException:
            await anyio.aclose_forcefully(remote.stream)
            raise
    return remote


def _accept_headers(items: Any) -> list[tuple[bytes, bytes]]:
    """The build's handshake response headers to pass on in the client's accept (a Set-Cookie,
    say): end-to-end ones, less those of the handshake itself and Date and Server."""
    pairs = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in items]
    return [(n, v) for n, v in response_headers(pairs) if n not in WEBSOCKET_HANDSHAKE]


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
    accept: dict[str, Any] = {
        "type": "websocket.accept",
        "subprotocol": remote.protocol.subprotocol,
    }
    if remote.accept_headers:
        accept["headers"] = remote.accept_headers
    await send(accept)
    try:
        async with anyio.create_task_group() as group:

            async def until_done(relay: Callable[[], Awaitable[None]]) -> None:
                await relay()
                group.cancel_scope.cancel()  # either side closing ends the other's relay

            group.start_soon(until_done, lambda: _from_client(remote, receive))
            group.start_soon(until_done, lambda: _from_upstream(remote, send))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(remote.stream)


async def _from_client(remote: Remote, receive: Receive) -> None:
    from websockets.exceptions import InvalidState
    from websockets.frames import Close

    protocol = remote.protocol
    with contextlib.suppress(InvalidState, anyio.BrokenResourceError, anyio.ClosedResourceError):
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code", 1000)
                try:
                    Close(code, "").check()
                except Exception:  # 1005, 1006...: codes a close frame may not carry
                    code = 1000
                protocol.send_close(code)
                await remote.flush()
                return
            if message.get("text") is not None:
                protocol.send_text(message["text"].encode())
            elif message.get("bytes") is not None:
                protocol.send_binary(message["bytes"])
            await remote.flush()


async def _from_upstream(remote: Remote, send: Send) -> None:
    from websockets.frames import CloseCode, Frame, Opcode

    protocol = remote.protocol
    parts: list[bytes] = []
    text = False
    open_ = True
    while open_:
        if not remote.events:
            open_ = await remote.receive()
        events, remote.events = remote.events, []
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            if frame.opcode is Opcode.CLOSE:
                open_ = False
            elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                if frame.opcode is not Opcode.CONT:
                    parts, text = [], frame.opcode is Opcode.TEXT
                parts.append(bytes(frame.data))
                if frame.fin:
                    data = b"".join(parts)
                    if not text:
                        await send({"type": "websocket.send", "bytes": data})
                        continue
                    try:
                        decoded = data.decode()
                    except UnicodeDecodeError:
                        protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                        await remote.flush()
                        open_ = False
                        break
                    await send({"type": "websocket.send", "text": decoded})
    received = protocol.close_rcvd  # the build's close frame, None when it just hung up
    code, reason = 1000, ""
    if received is not None and received.code not in (1005, 1006):
        code, reason = received.code, received.reason
    close: dict[str, Any] = {"type": "websocket.close", "code": code}
    if reason:
        close["reason"] = reason
    with contextlib.suppress(Exception):  # the client may be gone already
        await send(close)

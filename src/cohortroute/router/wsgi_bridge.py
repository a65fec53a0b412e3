"""A WSGI version mounted under the ASGI router: PEP 3333 on worker threads, on any async library.

Why our own bridge: asgiref's ``WsgiToAsgi`` runs every request on one thread
(``thread_sensitive=True``), reads the whole body first, never calls ``close()`` and has no
``write()``; a2wsgi has a thread pool and calls ``close()`` but is asyncio-only (trio servers
such as ``hypercorn -k trio`` cannot run it), sends the headers before the first body chunk
and drops chunked bodies. This bridge runs each request on anyio's worker threads (asyncio or
trio; at most anyio's default thread limiter at a time, 40 unless the app changes
``anyio.to_thread.current_default_thread_limiter().total_tokens``), and:

* streams the response (each chunk sent as the app yields it, with the headers held until the
  first non-empty chunk as PEP 3333 says) and the request body (:mod:`.wsgi_environ`);
* calls ``close()`` on the response iterable however the request ends, and ends a streamed
  response once the client has disconnected (the next ``write()`` raises
  :class:`~.wsgi_environ.ClientDisconnected`, as a write to a closed socket does under gunicorn):
  servers drop what is sent after a disconnect silently, so an endless stream (server-sent
  events) would go on for ever on a worker thread. The disconnect is watched for from the first
  streamed chunk on, once the request body was received whole (``receive()`` then waits for it);
* gives the app a working ``write()`` and honours ``start_response(..., exc_info)``;
* costs the loop one thread hop per request for a list or a response whose
  ``Content-Length`` is reached (the usual framework response), plus one per further chunk.

A websocket cannot reach a WSGI version: it is closed with 1003.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from .._types import Message, OptExcInfo, Receive, Scope, Send, WSGIApp
from .wsgi_environ import ClientDisconnected, body_ended, body_stream, build_environ

log = logging.getLogger(__name__)


class _Response:
    """One request's response, written by the app in a worker thread, sent on the loop."""

    def __init__(self, send: Send, watch: Callable[[], None] | None = None) -> None:
        self._send = send
        self.start: Message | None = None
        self.started = False  # the start message went out
        self.finished = False  # the last body message went out
        self.disconnected = False  # the client went away (set on the loop)
        self._left: int | None = None  # Content-Length bytes not sent yet
        self._watch = watch  # starts watching for the disconnect (on the loop), once

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Any:
        if exc_info is not None and exc_info[1] is not None:
            if self.started:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.start is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        self._left = None
        raw = []
        for name, value in headers:
            if name.lower() == "content-length":
                self._left = int(value)
            raw.append((name.lower().encode("latin1"), value.encode("latin1")))
        self.start = {"type": "http.response.start", "status": int(status[:3]), "headers": raw}
        return self.write

    def messages(self, data: bytes) -> list[Message]:
        """The messages that send ``data`` (the start message first when it is still due)."""
        if self.start is None:
            raise RuntimeError("the WSGI app sent a body before calling start_response()")
        out: list[Message] = []
        if not self.started:
            self.started = True
            out.append(self.start)
        more = True
        if self._left is not None:
            data = data[: self._left]
            self._left -= len(data)
            more = self._left > 0
        if data or not more:
            self.finished = not more
            out.append({"type": "http.response.body", "body": data, "more_body": more})
        return out

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()``: sent before it returns; raises once the client is gone."""
        if self.disconnected:
            raise ClientDisconnected("the client disconnected; the response cannot be sent")
        if not self.finished:
            anyio.from_thread.run(self._send_all, self.messages(data))

    async def _send_all(self, messages: list[Message]) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch()
        for message in messages:
            if self.disconnected:
                return
            await self._send(message)

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> list[Message]:
        """Call the app and stream its body; return what is left to send from the loop."""
        result = app(environ, self.start_response)
        try:
            if isinstance(result, (list, tuple)):
                # Already in memory: sent from the loop in one go, no thread hop.
                pending: list[Message] = []
                for chunk in result:
                    if chunk and not self.finished:
                        pending += self.messages(chunk)
                return pending
            for chunk in result:
                if chunk and not self.finished:
                    self.write(chunk)
                if self.finished:
                    break
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return []

    def ending(self, pending: list[Message]) -> list[Message]:
        """``pending`` plus the start (when no chunk carried it) and the last body message."""
        if not self.finished:
            pending = pending + self.messages(b"")
            if not self.finished:
                pending.append({"type": "http.response.body", "body": b"", "more_body": False})
        return pending


async def _until_disconnect(receive: Receive, response: _Response) -> None:
    """Mark ``response`` disconnected when the client goes (the body was received whole)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    response.disconnected = True


class WSGIVersion:
    """A WSGI app as an ASGI app for the router (see the module docstring)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        # The first piece of the body (or its end) is read here, saving the common request a
        # thread hop; the rest streams as the app reads it.
        data, more = b"", True
        while more and not data:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before the request arrived
            data, more = message.get("body", b""), bool(message.get("more_body"))
        body = body_stream(data, more, receive, anyio.from_thread.run)
        environ = build_environ(scope, body)
        pending: list[Message] = []
        failure: Exception | None = None
        async with anyio.create_task_group() as group:

            def watch() -> None:  # on the loop, at the first streamed chunk
                if body_ended(body):  # else the app may still call receive() for the body
                    group.start_soon(_until_disconnect, receive, response)

            response = _Response(send, watch)
            try:
                pending = await anyio.to_thread.run_sync(response.run, self.app, environ)
            except Exception as exc:  # raised outside the group: never an ExceptionGroup
                failure = exc
            finally:
                group.cancel_scope.cancel()
        if failure is not None and not (
            isinstance(failure, ClientDisconnected) and response.disconnected
        ):
            raise failure
        if response.disconnected:
            return  # the stream was ended for it: nothing more to send
        for message in response.ending(pending):
            await send(message)

    def __repr__(self) -> str:
        return f"WSGIVersion({self.app!r})"

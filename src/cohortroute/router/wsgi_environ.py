"""The WSGI side of the bridge: an ASGI scope as a PEP 3333 environ, and the streamed body.

The body is read from the ASGI ``receive`` as the app reads ``wsgi.input`` (never buffered
whole), through a ``BufferedReader`` (``read``, ``readline``, iteration). The environ always
says ``wsgi.input_terminated``: the stream ends where the body ends, so a chunked request with
no ``Content-Length`` reaches frameworks that honour it (werkzeug, Django) whole.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .._types import Message, Scope, WSGIEnvironment
from .base import DECISION_KEY, TENANT_KEY

log = logging.getLogger(__name__)

#: Calls an async function from the worker thread, on the event loop (``anyio.from_thread.run``).
OnLoop = Callable[..., Any]


class ClientDisconnected(OSError):
    """The client went away before the request body ended."""


class _Body(io.RawIOBase):
    """The request body as a raw stream: the first chunk, then ``receive()`` on the loop."""

    def __init__(
        self, first: bytes, more: bool, receive: Callable[[], Awaitable[Message]], on_loop: OnLoop
    ) -> None:
        self._chunk = memoryview(first)
        self._more = more
        self._receive = receive
        self._on_loop = on_loop

    def readable(self) -> bool:
        return True

    @property
    def ended(self) -> bool:
        """The whole body was received: ``receive()`` is no longer called for it."""
        return not self._more

    def readinto(self, buffer: Any) -> int:
        while not self._chunk and self._more:
            message = self._on_loop(self._receive)
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client disconnected before the request body ended")
            self._chunk = memoryview(message.get("body", b""))
            self._more = bool(message.get("more_body", False))
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


def body_stream(
    first: bytes, more: bool, receive: Callable[[], Awaitable[Message]], on_loop: OnLoop
) -> io.BufferedReader:
    """``wsgi.input``: ``first`` (the body of the first ``http.request``), then the rest."""
    return io.BufferedReader(_Body(first, more, receive, on_loop))


def body_ended(body: io.BufferedReader) -> bool:
    """True once the request body of :func:`body_stream` was received whole."""
    raw = body.raw
    return isinstance(raw, _Body) and raw.ended


def build_environ(scope: Scope, body: io.BufferedReader) -> WSGIEnvironment:
    """The PEP 3333 environ for an ASGI HTTP scope, with the router's decision keys."""
    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path_info = scope["path"].encode("utf8").decode("latin1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        DECISION_KEY: scope.get(DECISION_KEY),
        TENANT_KEY: scope.get(TENANT_KEY),
    }
    server = scope.get("server")
    if server is not None:
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = str(server[1] if server[1] is not None else 0)
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "80"
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin1").lower()
        if "_" in name:
            # As gunicorn and nginx do: X_Forwarded_For would pose as X-Forwarded-For.
            continue
        value = raw_value.decode("latin1")
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ

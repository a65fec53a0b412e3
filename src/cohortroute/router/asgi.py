"""The ASGI router: the hot path when any version is an ASGI app, and lifespan for all of them.

WSGI versions are mounted through asgiref's ``WsgiToAsgi`` (our decision keys copied into their
environ); a websocket cannot reach a WSGI version and is closed with 1003.
"""

from __future__ import annotations

from typing import Any

from asgiref.wsgi import WsgiToAsgi, WsgiToAsgiInstance

from .._types import ASGIApp, Receive, Scope, Send
from ._dispatch import Flavour
from .base import DECISION_KEY, TENANT_KEY, CohortRouter, is_asgi_app
from .lifespan import run_lifespan
from .registration import watch_asgi
from .responses import bad_request_asgi, maintenance_asgi


class _WsgiVersionInstance(WsgiToAsgiInstance):
    """asgiref's per-request WSGI bridge, also copying our decision keys into the environ."""

    def build_environ(self, scope: Scope, body: Any) -> dict[str, Any]:
        environ: dict[str, Any] = super().build_environ(scope, body)  # type: ignore[no-untyped-call]
        environ[DECISION_KEY] = scope.get(DECISION_KEY)
        environ[TENANT_KEY] = scope.get(TENANT_KEY)
        return environ


class _WsgiVersion(WsgiToAsgi):
    """A WSGI version mounted under the ASGI router; websockets cannot reach it (closed 1003)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        instance = _WsgiVersionInstance(self.wsgi_application, self.duplicate_header_limit)  # type: ignore[no-untyped-call]
        await instance(scope, receive, send)


class ASGICohortRouter(CohortRouter, interface="asgi"):
    """The ASGI flavour of :class:`CohortRouter`; also owns lifespan for every ASGI version."""

    _flavour = Flavour(bad_request=bad_request_asgi, maintenance=maintenance_asgi, watch=watch_asgi)

    def _mount(self) -> dict[str, Any]:
        self._asgi_versions: list[tuple[str, ASGIApp]] = [
            (name, app) for name, app in self.apps.items() if is_asgi_app(app)
        ]
        return {
            name: app if is_asgi_app(app) else _WsgiVersion(app)  # type: ignore[no-untyped-call]
            for name, app in self.apps.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            host = None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value
                    break
            if host is None:
                server = scope.get("server")
                host = (
                    server[0].encode("latin-1")
                    if server and scope.get("http_version") == "1.0"
                    else b""
                )
            read_clock = self._monotonic  # then call: a method-style call on an instance
            now = read_clock()  # attribute is never specialised by CPython
            if now >= self._next_check:
                self._refresh(now, wait=False)  # never block the event loop on the store
            entry = self._entries.get(host)
            if entry is None:
                entry = await self._dispatch.miss_async(host)
            scope[DECISION_KEY], scope[TENANT_KEY], app = entry
            await app(scope, receive, send)
        elif kind == "lifespan":
            await run_lifespan(self._asgi_versions, scope, receive, send)
        else:
            # An unknown scope type: hand it to the default version, as a server would.
            await self._dispatch.target(self.default)(scope, receive, send)

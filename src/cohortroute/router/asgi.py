"""The ASGI router: the hot path when any version is an ASGI app, and lifespan for all of them.

WSGI versions are mounted through :class:`~.wsgi_bridge.WSGIVersion` (worker threads, PEP 3333
whole), ASGI 2 apps through :func:`~.interfaces.as_asgi3`. A request carries a shallow copy of
its version's lifespan state (:mod:`.lifespan`). The Host is the one ``host`` header: several
are a 400 (RFC 9112), and an HTTP/1.0 request with none (or an empty one, as granian sends)
is routed by the server's own name, as the WSGI router does with ``SERVER_NAME``.

Signed QA overrides, visitor sampling (:mod:`cohortroute.assign.asgi`) and request-aware
assignment backends may hand a request to another version than its cached entry names, after
the router has looked at the entry; so a router with any of them picks each request's lifespan
state in the version's target (a small wrapper per version) instead of in
:meth:`ASGICohortRouter.__call__`, and a router with none keeps its warm path as it is.
"""

from __future__ import annotations

from typing import Any

from .._types import ASGIApp, Receive, Scope, Send
from ..assign.asgi import SignedOverrideASGI, VisitorSamplingASGI
from ..tenancy import server_host
from . import _exit
from ._dispatch import Flavour
from .base import DECISION_KEY, CohortRouter
from .interfaces import as_asgi3, kind_of, unwrapped
from .lifespan import STATES_KEY, Lifespan
from .registration import watch_asgi
from .responses import bad_request_asgi, maintenance_asgi
from .wsgi_bridge import WSGIVersion

_HTTP_10 = frozenset({"1.0", "1"})  # granian says "1" for HTTP/1.0
_several_hosts = bad_request_asgi("several Host headers in one request (RFC 9112 allows one)")


class ASGICohortRouter(CohortRouter, interface="asgi"):
    """The ASGI flavour of :class:`CohortRouter`; also owns lifespan for every ASGI version."""

    _flavour = Flavour(
        bad_request=bad_request_asgi,
        maintenance=maintenance_asgi,
        watch=watch_asgi,
        signed_override=SignedOverrideASGI,
        visitor_sampling=VisitorSamplingASGI,
    )

    def _mount(self) -> dict[str, Any]:
        targets: dict[str, Any] = {}
        by_app: dict[int, tuple[list[str], ASGIApp]] = {}
        for name, app in self.apps.items():
            if kind_of(app) == "wsgi":
                targets[name] = WSGIVersion(unwrapped(app))
                continue
            key = id(unwrapped(app))
            if key not in by_app:  # one lifespan for an app mounted under several names
                by_app[key] = ([], as_asgi3(app))
            names, targets[name] = by_app[key]
            names.append(name)
        # A request may change version after the router read its entry (a signed override, a
        # sampled visitor, a request-aware backend): then each version's target picks its own
        # state, and the router never does.
        self._targets_pick_state = (
            self._override_keys is not None
            or self._visitor_cookies is not None
            or bool(self.chain.request_aware)
        )
        if self._targets_pick_state:
            targets = {name: _with_version_state(target, name) for name, target in targets.items()}
        self._states_given = False  # until a lifespan gives each version its state
        self._lifespan = Lifespan(
            list(by_app.values()), list(self.apps), self._give_states, self._at_shutdown
        )
        return targets

    def _at_shutdown(self) -> None:
        """Write the counted signals and the registry queue when lifespan shutdown is done:
        uvicorn's workers then end without running ``atexit`` (see :mod:`._exit`)."""
        _exit.close_all(self._registrar, self.signals)

    def _give_states(self) -> None:
        self._states_given = not self._targets_pick_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            host = None
            for name, value in scope["headers"]:
                if name == b"host":
                    if host is not None:
                        await _several_hosts(scope, receive, send)
                        return
                    host = value
            if not host:
                host = _no_host(scope)
            read_clock = self._monotonic  # then call: a method-style call on an instance
            now = read_clock()  # attribute is never specialised by CPython
            waited = 0.0  # on the store (past the fail-closed horizon a refresh waits)
            if now >= self._next_check:
                self._refresh(now, wait=False)  # never block the event loop on the store
                waited = read_clock() - now
            entry = self._entries.get(host)
            if entry is None:
                entry = await self._dispatch.miss_async(host, waited)
            # Literal keys (DECISION_KEY, TENANT_KEY): a constant is cheaper than a global.
            scope["cohortroute.decision"], scope["cohortroute.tenant"], app = entry
            if self._states_given:
                _version_state(scope)
            await app(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            # An unknown scope type: hand it to the default version, as a server would.
            await self._dispatch.target(self.default)(scope, receive, send)


def _no_host(scope: Scope) -> bytes:
    """The Host of a request without one: the server's name on HTTP/1.0, else none (400)."""
    server = scope.get("server")
    if server and scope.get("http_version") in _HTTP_10:
        return server_host(str(server[0])).encode("latin-1")
    return b""


def _version_state(scope: Scope, version: str | None = None) -> None:
    """Give the request a copy of ``version``'s lifespan state instead of the server's (by
    default the version its decision names; one call on the router's path)."""
    if version is None:
        decision = scope[DECISION_KEY]
        if decision is None:
            return
        version = decision.version
    state = scope.get("state")
    states = None if state is None else state.get(STATES_KEY)
    if states is not None:
        mine = states.get(version)
        if mine is not None:
            scope["state"] = mine.copy()


def _with_version_state(app: ASGIApp, version: str) -> ASGIApp:
    """``app``, giving each request a copy of ``version``'s lifespan state (once a lifespan
    gave the versions theirs) whichever version the router's cached entry named."""

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        _version_state(scope, version)
        await app(scope, receive, send)

    return with_state

"""The ASGI side of request-level assignment: signed QA overrides and anonymous visitors.

The ASGI router wraps a cached target in these exactly where the WSGI router wraps it in
:class:`~.wsgi.SignedOverrideWSGI` and :class:`~.visitors.VisitorSamplingWSGI`: a tenant's
entry when ``override_keys`` is given, a no-tenant host's entry while a visitor sample is set.
Which token counts and which visitor is sampled is decided by the functions those share
(:func:`.tokens.overridden`, :func:`.visitors.visit`); this module only reads ASGI headers
and adds response headers.

Headers are read from the scope's ``(name, value)`` byte pairs, names lower case, values
Latin-1. Several ``Cookie`` headers (HTTP/2 sends one per cookie) are joined with ``"; "``;
several ``X-Cohortroute-Override`` headers are joined with ``","``, as WSGI servers join
repeated headers, so such a request is ignored and counted as ``bad`` under both.

Websockets are handled like HTTP: the handshake's header or cookie carries the token, the
handshake's cookie says who the visitor is, and a new visitor's cookie rides on
``websocket.accept`` (RFC 6455 clients handle ``Set-Cookie`` on the handshake response).
"""

from __future__ import annotations

from .._types import ASGIApp, Message, Receive, Scope, Send
from .tokens import OverrideWrapper, overridden, request_token
from .visitors import SamplingWrapper, visit

DECISION_KEY = "cohortroute.decision"

_OVERRIDE = b"x-cohortroute-override"
_VARY = (b"vary", b"Cookie")


def _cookie_header(scope: Scope) -> str | None:
    """The request's ``Cookie`` header value, several joined with ``"; "``; None without one."""
    values = [value for name, value in scope["headers"] if name == b"cookie"]
    if not values:
        return None
    return b"; ".join(values).decode("latin-1")


def _token_headers(scope: Scope) -> tuple[str | None, str | None]:
    """The request's ``X-Cohortroute-Override`` and ``Cookie`` header values (one pass)."""
    override: list[bytes] = []
    cookie: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie.append(value)
        elif name == _OVERRIDE:
            override.append(value)
    return (
        b",".join(override).decode("latin-1") if override else None,
        b"; ".join(cookie).decode("latin-1") if cookie else None,
    )


class SignedOverrideASGI(OverrideWrapper):
    """``app`` for ``decision``, unless the request carries a valid signed override token."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = request_token(*_token_headers(scope))
        decision = (
            None
            if token is None
            else overridden(self.keys, token, self.decision, self.clock(), self.only)
        )
        if decision is None:
            await self.app(scope, receive, send)
            return
        scope[DECISION_KEY] = decision
        target: ASGIApp = self.targets[decision.version]
        await target(scope, receive, send)


class VisitorSamplingASGI(SamplingWrapper):
    """``app`` for a no-tenant host, or the sampled version for the visitors in the sample;
    responses carry ``Vary: Cookie`` and, for a new visitor, its signed cookie."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        decision, set_cookie = visit(self.sample, self.cookies, _cookie_header(scope))
        app: ASGIApp = self.app
        if decision is not None:
            scope[DECISION_KEY] = decision
            app = self.targets[decision.version]
        extra = [_VARY]
        if set_cookie is not None:
            extra.append((b"set-cookie", set_cookie.encode("latin-1")))
        # Vary means nothing on a websocket's 101 answer (no cache keeps it); the cookie does.
        accepted = extra[1:]

        async def sending(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif kind == "websocket.accept" and accepted:
                message = {**message, "headers": [*message.get("headers", ()), *accepted]}
            await send(message)

        await app(scope, receive, sending)

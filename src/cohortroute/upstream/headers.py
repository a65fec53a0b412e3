"""What a forwarded request and its response carry: hop-by-hop headers out, forwarding in.

Both paths work on raw ``(name, value)`` byte pairs with lower-case names (ASGI's form; the WSGI
path converts its environ), so the rules live here once. A hop-by-hop header describes one
connection and must not cross the router (RFC 9110 7.6.1), nor may a header the ``Connection``
header names. The ``X-Cohortroute-*`` headers a client sends are dropped before the router's
own are added: the build trusts them to name the tenant.
"""

from __future__ import annotations

import http.cookiejar
import logging
from collections.abc import Iterable

from ..decision import Decision

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: Headers the websocket handshake to the upstream makes itself.
WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"content-length",
    }
)
#: Response headers the front server writes itself (a second Date or Server would be sent).
FRONT_SERVER = frozenset({b"date", b"server"})
DECISION_PREFIX = b"x-cohortroute-"
TENANT_HEADER = b"x-cohortroute-tenant"
VERSION_HEADER = b"x-cohortroute-version"
REASON_HEADER = b"x-cohortroute-reason"


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` less the hop-by-hop ones and those the ``Connection`` header lists."""
    pairs = list(headers)
    listed = set(HOP_BY_HOP)
    for name, value in pairs:
        if name == b"connection":
            listed.update(token.strip().lower() for token in value.split(b","))
    return [(name, value) for name, value in pairs if name not in listed]


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream's response headers to relay: end-to-end ones, less Date and Server."""
    lowered = ((name.lower(), value) for name, value in headers)
    return [(name, value) for name, value in end_to_end(lowered) if name not in FRONT_SERVER]


def _node(address: str) -> str:
    """An address as RFC 7239 writes it: IPv6 in quoted brackets."""
    return f'"[{address}]"' if ":" in address else address


def _appended(pairs: Headers, name: bytes, value: bytes) -> None:
    """Append ``value`` to the ``name`` header, comma-separated, or add it. Repeated ``name``
    headers are merged into the first one, in order, first: appending to the first alone
    would leave a later, client-sent one last, where the build reads the nearest hop."""
    values = [current for existing, current in pairs if existing == name]
    if not values:
        pairs.append((name, value))
        return
    first = next(index for index, (existing, _) in enumerate(pairs) if existing == name)
    merged = b", ".join([*values, value])
    pairs[:] = [pair for pair in pairs if pair[0] != name]
    pairs.insert(first, (name, merged))


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that neither stores nor sends a cookie."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


def no_cookie_jar() -> http.cookiejar.CookieJar:
    """The pooled clients' cookie jar, which keeps nothing. A ``Set-Cookie`` from a build is
    the client's, relayed to it; a jar shared by the router's requests would send one
    visitor's session cookie on every later visitor's request."""
    return http.cookiejar.CookieJar(policy=_NoCookies())


def request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    host: bytes,
    decision: Decision | None,
    upstream_host: bytes | None,
) -> Headers:
    """The headers to send upstream for a request that came with ``headers``.

    ``X-Forwarded-*`` and ``Forwarded`` are appended to (each proxy adds its hop; werkzeug's
    ``ProxyFix(x_for=1, ...)`` reads the last one). ``upstream_host`` replaces the Host when
    given (``preserve_host=False``).
    """
    pairs = [
        (name, value) for name, value in end_to_end(headers) if not name.startswith(DECISION_PREFIX)
    ]
    if upstream_host is not None:
        pairs = [(name, value) for name, value in pairs if name != b"host"]
        pairs.append((b"host", upstream_host))
    proto = scheme.encode("latin-1")
    forwarded = [f"proto={scheme}".encode("latin-1")]
    if client:
        _appended(pairs, b"x-forwarded-for", client.encode("latin-1"))
        forwarded.insert(0, f"for={_node(client)}".encode("latin-1"))
    _appended(pairs, b"x-forwarded-proto", proto)
    if host:
        _appended(pairs, b"x-forwarded-host", host)
        forwarded.append(b'host="' + host.replace(b'"', b"") + b'"')
    _appended(pairs, b"forwarded", b";".join(forwarded))
    if decision is not None:
        if decision.tenant is not None:
            pairs.append((TENANT_HEADER, decision.tenant.encode("ascii")))
        pairs.append((VERSION_HEADER, decision.version.encode("ascii")))
        pairs.append((REASON_HEADER, str(decision.reason).encode("ascii")))
    return pairs


def has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request with ``headers`` carries a body (a length above 0, or chunked)."""
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False

"""The answers a client gets when the upstream cannot be reached or is too slow: 502 and 504.

The client is anonymous, so its body names only the version that is unavailable; the upstream's
address (host, port or socket path) and the cause with its hint go to the operator's log only,
redacted with the store URLs' helper. :func:`why` tells a name that does not resolve, a missing
unix socket, a refused connection and a timeout apart, for that log line and the websocket's.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator

import httpx

from ..store._urls import redact

log = logging.getLogger(__name__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of any exception group among them."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(getattr(current, "exceptions", ()))  # BaseExceptionGroup members
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def why(exc: BaseException) -> tuple[int, str]:
    """(502 or 504, what happened and what to check) for ``exc`` raised reaching an upstream."""
    if isinstance(exc, httpx.PoolTimeout):
        return 504, "had no free connection in time (every pooled one is busy; see max_connections)"
    chain = list(_chain(exc))
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return 504, "did not answer in time (see read_timeout)"
    if isinstance(exc, httpx.ConnectTimeout) or any(isinstance(e, TimeoutError) for e in chain):
        return 504, "did not accept the connection in time (is the host up? see connect_timeout)"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return 502, "has a host name that does not resolve (check the name and this host's DNS)"
    if any(isinstance(e, OSError) and e.errno == errno.ENOENT for e in chain):
        return 502, "has no socket file there (is its server running, listening on that path?)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or any(
        isinstance(e, OSError) and e.errno == errno.ECONNREFUSED for e in chain
    ):
        return 502, "refused the connection (is its server running, on that port or socket?)"
    if type(exc).__module__.startswith("websockets"):  # InvalidStatus, InvalidMessage...
        return 502, f"refused the websocket handshake ({exc})"
    if isinstance(exc, httpx.ConnectError | OSError):
        return 502, f"could not be connected to ({type(exc).__name__})"
    if isinstance(exc, httpx.TransportError):
        return 502, f"broke off the exchange ({type(exc).__name__})"
    return 502, f"failed unexpectedly while connecting ({type(exc).__name__})"


def failure(version: str, address: str, exc: BaseException) -> tuple[int, str, str]:
    """(status, reason phrase, body) for ``exc`` raised while asking ``address`` for ``version``.

    Logs once: the redacted address, the cause and its hint; with the traceback when ``exc``
    is not one of httpx's transport errors (a bug somewhere rather than a build that is down).
    """
    status, what = why(exc)
    expected = isinstance(exc, httpx.TransportError)
    log.warning(
        "upstream %s for version %s %s: %s",
        redact(address),
        version,
        what,
        exc,
        exc_info=None if expected else exc,
    )
    title = "Gateway Timeout" if status == 504 else "Bad Gateway"
    return status, title, client_body(status, version)


def client_body(status: int, version: str) -> str:
    """The 502/504 body for the client: the version that is unavailable, no address."""
    title = "Gateway Timeout" if status == 504 else "Bad Gateway"
    slow = "did not answer in time" if status == 504 else "could not be reached"
    return (
        f"{status} {title}: version {version} is unavailable (its server {slow}); "
        "the operator's log has the details.\n"
    )


RETRIED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods sent once more when a kept-alive connection turns out to be closed: idempotent, and
forwarded here without a body."""

_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def send_again(method: str, has_content: bool, exc: BaseException) -> bool:
    """Whether a request that failed with ``exc`` goes out once more, on another connection.

    A build closes an idle kept-alive connection after its own timeout (uvicorn 5 s, gunicorn
    2 s); a request sent as it does fails before any answer. An idempotent request without a
    body is then sent again once, as nginx does; anything else is the gateway's 502.
    """
    return method in RETRIED_METHODS and not has_content and isinstance(exc, _CLOSED_UNDER_US)

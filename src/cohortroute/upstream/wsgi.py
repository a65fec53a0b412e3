"""Forwarding a WSGI request to an upstream over httpx's pooled synchronous client.

The request body is read from ``wsgi.input`` piece by piece while it is sent, and the response
is returned as an iterable over the upstream's raw bytes (compressed bodies pass as they are),
so neither is held whole. A failure before the upstream's headers is answered 502/504; after
them the status is already sent, so the exception is raised and the server cuts the connection
short, which the client sees as a truncated response rather than a silently short one.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import httpx

from .._types import StartResponse, WSGIEnvironment
from ..decision import Decision
from .errors import failure, send_again
from .headers import has_body, request_headers, response_headers

if TYPE_CHECKING:
    from .target import Upstream

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_DECISION_KEY = "cohortroute.decision"  # router.base.DECISION_KEY; not imported: base imports us


def _environ_headers(environ: WSGIEnvironment) -> list[tuple[bytes, bytes]]:
    pairs = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").lower()
        else:
            continue
        pairs.append((name.encode("latin-1"), str(value).encode("latin-1")))
    return pairs


def _target(environ: WSGIEnvironment) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return str(raw)
    from urllib.parse import quote

    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    target = quote(path.encode("latin-1"), safe="/;=,:@!$&'()*+~")
    query = environ.get("QUERY_STRING")
    return f"{target}?{query}" if query else target or "/"


def _body(environ: WSGIEnvironment) -> Iterator[bytes]:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        remaining = int(length)
        while remaining > 0:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    else:
        while chunk := stream.read(CHUNK):
            yield chunk


class _Response:
    """The upstream's body as a WSGI iterable; ``close()`` returns the connection to the pool
    and gives the pool back to the upstream (which closes it if it was closed meanwhile).

    A server must call ``close()``; one that drops the body without it gives the pool back
    when the body is collected, so a closed upstream still closes its connections.
    """

    def __init__(self, response: httpx.Response, done: Callable[[], None]) -> None:
        self._response = response
        self._done = weakref.finalize(self, done)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.iter_raw()  # as it arrives: a chunk_size would wait to fill

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._done()  # once at most


def forward(
    upstream: Upstream, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """Send the request in ``environ`` to ``upstream`` and relay its answer."""
    decision: Decision | None = environ.get(_DECISION_KEY)
    version = decision.version if decision is not None else "?"
    incoming = _environ_headers(environ)
    host = environ.get("HTTP_HOST", "").encode("latin-1")
    address = upstream.address
    headers = request_headers(
        incoming,
        client=environ.get("REMOTE_ADDR"),
        scheme=environ.get("wsgi.url_scheme", "http"),
        host=host,
        decision=decision,
        upstream_host=None if upstream.preserve_host else address.netloc.encode("latin-1"),
    )
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    content = _body(environ) if (has_body(incoming) or chunked) else None
    lent = upstream.borrow()
    client = lent.client
    try:
        request = client.build_request(
            environ["REQUEST_METHOD"],
            address.base_url + _target(environ),
            headers=headers,
            content=content,
        )
        try:
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            if not send_again(request.method, content is not None, exc):
                raise
            log.info("cohortroute: %s closed a kept-alive connection; sending again", version)
            response = client.send(request, stream=True)
    except httpx.TransportError as exc:
        upstream.give_back(lent)
        status, title, text = failure(version, str(address), exc)
        body = text.encode()
        start_response(
            f"{status} {title}",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]
    except BaseException:
        upstream.give_back(lent)
        raise
    answer = _Response(response, functools.partial(upstream.give_back, lent))
    try:
        reply = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response_headers(response.headers.raw)
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", reply)
    except BaseException:
        answer.close()
        raise
    return answer

"""The answers the router gives itself, without a mounted app: 400 for a bad host, 503 while
a tenant's data migrates.

Each is built once (a ready-made WSGI or ASGI app, headers and body encoded in advance) and
cached like any other target, so a rejected host or a migrating tenant takes the same warm path
as everybody else.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._types import ASGIApp, Receive, Scope, Send, StartResponse, WSGIApp, WSGIEnvironment

_TEXT = "text/plain; charset=utf-8"


def _bad_request_body(message: str) -> bytes:
    return f"400 Bad Request: {message}.\n".encode()


def _maintenance_headers(body: bytes, retry_after: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", _TEXT),
        ("Content-Length", str(len(body))),
        ("Retry-After", str(retry_after)),
        ("Cache-Control", "no-store"),
    ]


def _wsgi(status: str, headers: list[tuple[str, str]], body: bytes) -> WSGIApp:
    def answer(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [body]

    return answer


def _asgi(
    status: int, headers: list[tuple[str, str]], body: bytes, websocket_close: dict[str, object]
) -> ASGIApp:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", **websocket_close})
            return
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    return answer


def bad_request_wsgi(message: str) -> WSGIApp:
    """A WSGI app answering a plain-text 400 that says what is wrong with the host."""
    body = _bad_request_body(message)
    return _wsgi(
        "400 Bad Request", [("Content-Type", _TEXT), ("Content-Length", str(len(body)))], body
    )


def bad_request_asgi(message: str) -> ASGIApp:
    """The ASGI twin of :func:`bad_request_wsgi`; websockets are closed with 1008 (policy)."""
    body = _bad_request_body(message)
    headers = [("Content-Type", _TEXT), ("Content-Length", str(len(body)))]
    return _asgi(400, headers, body, {"code": 1008, "reason": message[:120]})


def maintenance_wsgi(retry_after: int, body: str) -> WSGIApp:
    """A WSGI app answering 503 with ``Retry-After``: what a migrating tenant's requests get."""
    data = body.encode()
    return _wsgi("503 Service Unavailable", _maintenance_headers(data, retry_after), data)


def maintenance_asgi(retry_after: int, body: str) -> ASGIApp:
    """The ASGI twin of :func:`maintenance_wsgi`; websockets are closed with 1013 (try later)."""
    data = body.encode()
    headers = _maintenance_headers(data, retry_after)
    return _asgi(503, headers, data, {"code": 1013, "reason": "upgrading"})

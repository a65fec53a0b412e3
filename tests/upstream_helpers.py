"""A real HTTP server in a thread for the Upstream tests: uvicorn, on TCP or a unix socket."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from tests.test_faults import poll


@contextlib.contextmanager
def serving(app: Callable[..., Any], unix_path: str | None = None) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a thread until the block ends; yields the
    address for ``Upstream(...)``. Uvicorn keeps connections alive, which the pool reuses."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        uds=unix_path,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        if poll(lambda: server.started or not thread.is_alive(), timeout=10) is None:
            raise AssertionError("uvicorn did not start in 10 s")
        if not server.started:
            raise AssertionError("uvicorn exited at start-up")
        if unix_path:
            yield f"unix:{unix_path}"
        else:
            port = server.servers[0].sockets[0].getsockname()[1]
            yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def respond(send: Any, body: bytes, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006 - never mutated
    """Answer 200 with ``body``."""
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": 200, "headers": [length, *headers]})
    await send({"type": "http.response.body", "body": body})


def echo_build(name: str) -> Callable[..., Any]:
    """An ASGI build answering JSON: its name, the request it got (headers, body, peer port)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        answer = {
            "build": name,
            "method": scope["method"],
            "path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "body_length": len(body),
            "peer_port": scope["client"][1] if scope.get("client") else None,
        }
        payload = json.dumps(answer).encode()
        extra = [(b"content-type", b"application/json"), (b"x-build", name.encode())]
        await respond(send, payload, extra)

    return app

"""A streamed WSGI response under the ASGI router ends when the client disconnects.

uvicorn and hypercorn drop what is sent after a disconnect silently, so an endless WSGI stream
(server-sent events from Flask) went on being iterated on a worker thread for ever, and its
``close()`` never ran: each such client left took one of anyio's 40 threads with it. Under
gunicorn a write to the closed socket raises and ends the stream; the bridge now does the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Literal

import anyio
import pytest

from cohortroute import CohortRouter

DEADLINE = 60.0  # seconds: generous for a loaded CI machine; the test ends as soon as it can
CAP = 5_000  # chunks an "endless" stream yields at most


class Endless:
    """A WSGI app streaming chunks for ever (until closed), recording what happened."""

    def __init__(self) -> None:
        self.yielded = 0
        self.closed = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return self._events()

    def _events(self) -> Iterator[bytes]:
        try:
            while self.yielded < CAP:  # bounded, so that the test fails instead of hanging
                self.yielded += 1
                yield b"data: tick\n\n"
        finally:
            self.closed.set()


async def asgi_ping(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not used")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_endless_wsgi_stream_is_closed_once_the_client_disconnects(
    backend: Literal["asyncio", "trio"],
) -> None:
    endless = Endless()
    router = CohortRouter(
        {"v1": endless, "v2": asgi_ping},
        default="v1",
        domains=["example.com"],
        register_tenants=False,
    )
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        disconnect = anyio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            # As uvicorn and hypercorn do: after the disconnect, sends are dropped silently.
            if not disconnect.is_set():
                sent.append(message)
                if len(sent) >= 3:
                    disconnect.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/events",
            "raw_path": b"/events",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"acme.example.com")],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        with anyio.fail_after(DEADLINE):
            await router(scope, receive, send)

    try:
        anyio.run(main, backend=backend)
    finally:
        router.close()
    assert endless.closed.is_set()
    assert endless.yielded < 10, f"went on streaming after the disconnect: {endless.yielded}"
    assert sent[0]["type"] == "http.response.start"

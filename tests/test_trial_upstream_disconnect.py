"""The ASGI router stops forwarding a streamed response when its client disconnects, found by
trying it: an endless stream (server-sent events) held its upstream connection, and the build
kept producing, after the client had gone. Under the WSGI router the server closes the body."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cohortroute.upstream import Upstream
from tests.apps import communicator
from tests.test_faults import poll
from tests.test_upstream_asgi import http_scope, lifespan, make
from tests.upstream_helpers import serving

ended = threading.Event()


async def endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Server-sent events until the router hangs up (its server says so by ``receive()``, as
    a send to a closed connection is dropped without an error); sets ``ended`` then."""
    await receive()
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
    gone = asyncio.ensure_future(receive())  # http.disconnect, once the router hangs up
    index = 0
    while not gone.done():
        event = {"type": "http.response.body", "body": b"data: %d\n\n" % index}
        await send({**event, "more_body": True})
        index += 1
        await asyncio.sleep(0.01)
    ended.set()


@pytest.fixture
def build() -> Iterator[str]:
    ended.clear()
    with serving(endless) as url:
        yield url


def test_a_client_that_disconnects_ends_the_forwarded_stream(build: str) -> None:
    upstream = Upstream(build)
    router = make(upstream)

    async def inside() -> None:
        comm = communicator(router, http_scope("/events"))
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        assert (await comm.receive_output(5))["status"] == 200
        assert b"data: 0" in (await comm.receive_output(5))["body"]
        await comm.send_input({"type": "http.disconnect"})
        await comm.wait(10)  # cancels the call if it is still relaying after 10 s
        call: asyncio.Future[None] = comm.future  # type: ignore[attr-defined] # asgiref's own
        assert not call.cancelled(), "the router went on relaying after the disconnect"
        # ...and hung up on the build, while the pool is still open (before shutdown).
        took = await asyncio.to_thread(poll, ended.is_set, 10)
        assert took is not None, "the build still streams"

    try:
        asyncio.run(lifespan(router, inside))
    finally:
        router.close()
        upstream.close()

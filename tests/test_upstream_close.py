"""``Upstream.close()``: closes the pooled connections of both paths, may be called twice, and
lets requests in flight finish on their connections, which close when the last one ends.

The build is a real uvicorn server in a thread (tests/upstream_helpers.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from cohortroute.upstream import Upstream
from tests.apps import communicator
from tests.upstream_helpers import serving

HOST = ("Host", "acme.example.com")


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds the build's second chunk back until set (set at teardown in any case)."""
    release = threading.Event()
    yield release
    release.set()


@pytest.fixture
def build(gate: threading.Event) -> Iterator[str]:
    """Answers ``<its peer port>|`` at once, then ``rest`` once the gate opens."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        port = str(scope["client"][1]).encode()
        await send({"type": "http.response.body", "body": port + b"|", "more_body": True})
        if scope["path"] == "/slow":
            await asyncio.to_thread(gate.wait, 5)
        await send({"type": "http.response.body", "body": b"rest"})

    with serving(app) as url:
        yield url


def wsgi_get(upstream: Upstream, path: str = "/") -> tuple[Iterator[bytes], Any]:
    environ = EnvironBuilder(path, headers=[HOST]).get_environ()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    body: Any = upstream(environ, start_response)
    assert statuses == ["200 OK"]
    return iter(body), body


def wsgi_port(upstream: Upstream) -> bytes:
    chunks, body = wsgi_get(upstream)
    try:
        port, rest = b"".join(chunks).split(b"|")
    finally:
        body.close()
    assert rest == b"rest"
    return port


def test_close_closes_idle_connections_and_is_idempotent(build: str) -> None:
    upstream = Upstream(build)
    first = wsgi_port(upstream)
    assert wsgi_port(upstream) == first  # kept alive
    pool = upstream.client()
    upstream.close()
    assert pool.is_closed
    upstream.close()
    assert wsgi_port(upstream) != first  # a new pool, a new connection
    assert upstream.client() is not pool
    upstream.close()


def test_close_during_a_streamed_response_lets_it_finish(build: str, gate: threading.Event) -> None:
    upstream = Upstream(build)
    chunks, body = wsgi_get(upstream, "/slow")
    assert next(chunks).endswith(b"|")
    pool = upstream.client()
    upstream.close()  # from another thread than the request's, as a server's shutdown would
    assert not pool.is_closed  # the response still uses it
    gate.set()
    assert b"".join(chunks) == b"rest"
    body.close()
    assert pool.is_closed  # the last request on it ended
    assert upstream.client() is not pool


def test_a_body_dropped_without_close_still_lets_the_pool_close(
    build: str, gate: threading.Event
) -> None:
    upstream = Upstream(build)
    chunks, body = wsgi_get(upstream, "/slow")
    next(chunks)
    pool = upstream.client()
    upstream.close()
    gate.set()
    del chunks, body  # a server that never calls close()
    assert pool.is_closed


async def asgi_get(app: Any, path: str) -> Any:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"acme.example.com")],
        "client": ("10.0.0.9", 5000),
        "server": ("127.0.0.1", 8000),
    }
    comm = communicator(app, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert (await comm.receive_output(5))["status"] == 200
    return comm


async def rest_of(comm: Any) -> bytes:
    data = b""
    while True:
        message = await comm.receive_output(5)
        data += bytes(message.get("body", b""))
        if not message.get("more_body"):
            await comm.wait(5)
            return data


def test_close_under_asgi_waits_for_requests_in_flight_then_closes(
    build: str, gate: threading.Event
) -> None:
    upstream = Upstream(build)
    app = upstream.asgi()

    async def scenario() -> None:
        comm = await asgi_get(app, "/slow")
        assert (await comm.receive_output(5))["body"].endswith(b"|")
        pool = app.client()
        app.close()  # the form the ASGI router mounts closes the same pools
        assert not pool.is_closed
        gate.set()
        assert await rest_of(comm) == b"rest"
        assert pool.is_closed
        # Idle: closed on its own loop, at its next turn.
        comm = await asgi_get(app, "/")
        assert (await comm.receive_output(5))["body"].endswith(b"|")
        assert await rest_of(comm) == b"rest"
        idle = app.client()
        upstream.close()
        upstream.close()
        for _ in range(20):  # let the loop run the closing it was handed (no time passes)
            if idle.is_closed:
                break
            await asyncio.sleep(0)
        assert idle.is_closed

    asyncio.run(scenario())


def test_closing_the_router_closes_the_pools_of_the_upstreams_it_mounts(build: str) -> None:
    from cohortroute import CohortRouter

    upstream = Upstream(build)

    def local(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"local"]

    # Mounted under two names: closed once, and a version served in process is left alone.
    router: Any = CohortRouter(
        {"v1": local, "v2": upstream, "v3": upstream}, domains=["example.com"], default="v2"
    )
    environ = EnvironBuilder("/", headers=[HOST]).get_environ()
    body = router(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body).endswith(b"|rest")
    body.close()
    pool = upstream.client()
    router.close()
    assert pool.is_closed

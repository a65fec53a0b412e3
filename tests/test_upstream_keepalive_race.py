"""A build closes an idle kept-alive connection after its own timeout (uvicorn 5 s, gunicorn 2 s)
while the router's pool keeps it longer: a request sent just as the build closes fails before any
answer. An idempotent request without a body is sent once more on a new connection, as nginx
does; a POST is not (the build may have acted on it), and is the gateway's 502.

The build here answers the first request on a connection and closes the connection when the
second arrives, without answering: that race, made deterministic."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream
from tests.apps import asgi_version, wsgi_version
from tests.test_upstream_asgi import call, http_scope, lifespan

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def _read_request(conn: socket.socket, pending: bytearray) -> bool:
    """Read one request's head and its Content-Length body; False when the peer closed."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return False
        pending += data
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return False
        rest += data
    pending[:] = rest[length:]
    return True


class ClosingBuild:
    """Serves on a loopback port; every connection answers one request, then closes on the
    next one without answering. ``connections`` counts the connections it accepted."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        pending = bytearray()
        with conn:
            if _read_request(conn, pending):
                conn.sendall(OK)
                _read_request(conn, pending)  # the next request: closed under it

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def build() -> Iterator[ClosingBuild]:
    server = ClosingBuild()
    yield server
    server.close()


def answer(client: Client, method: str, data: bytes | None = None) -> tuple[int, bytes]:
    """Status and body, the response closed (its connection back in the pool), as a server
    does after sending it."""
    response = client.open("/", method=method, data=data, headers={"Host": "acme.example.com"})
    try:
        return response.status_code, response.get_data()
    finally:
        response.close()


def _wsgi_router(upstream: Upstream) -> Any:
    router = CohortRouter(
        apps={"v1": wsgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")
    return router


def test_a_get_on_a_connection_the_build_closed_is_sent_again_under_wsgi(
    build: ClosingBuild,
) -> None:
    upstream = Upstream(f"http://127.0.0.1:{build.port}")
    router = _wsgi_router(upstream)
    try:
        client = Client(router)
        for _ in range(3):
            assert answer(client, "GET") == (200, b"ok")
        assert answer(client, "HEAD") == (200, b"")
        # each request after the first went out on the kept-alive connection, which the build
        # closed under it, and was sent again on a new one
        assert build.connections == 4
    finally:
        router.close()


def test_a_post_is_not_sent_twice_under_wsgi(build: ClosingBuild) -> None:
    upstream = Upstream(f"http://127.0.0.1:{build.port}")
    router = _wsgi_router(upstream)
    try:
        client = Client(router)
        assert answer(client, "GET") == (200, b"ok")
        assert answer(client, "POST", b"pay=1")[0] == 502
        assert build.connections == 1  # not sent again
    finally:
        router.close()


def test_a_get_on_a_connection_the_build_closed_is_sent_again_under_asgi(
    build: ClosingBuild,
) -> None:
    upstream = Upstream(f"http://127.0.0.1:{build.port}")
    router = CohortRouter(
        apps={"v1": asgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")

    async def inside() -> list[tuple[int, bytes]]:
        gets = [await call(router, http_scope("/")) for _ in range(3)]
        posted = await call(router, http_scope("/", body=b"pay=1"), body=b"pay=1")
        return [*gets, posted]

    try:
        answers = asyncio.run(lifespan(router, inside))
    finally:
        router.close()
    assert answers[:3] == [(200, b"ok")] * 3
    assert answers[3][0] == 502  # the POST went out on the kept-alive connection: not resent

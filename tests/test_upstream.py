"""Upstream under the WSGI router: a version served by another process, forwarded over HTTP.

Each test runs a real HTTP server (werkzeug's, in a thread) as the build, on TCP or a unix
socket, and sends requests through a router mounting it next to an in-process version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder

from cohortroute import CohortRouter, Signals, SignalsConfig
from cohortroute.errors import ConfigurationError
from cohortroute.upstream import Upstream
from cohortroute.upstream.headers import response_headers
from tests.apps import wsgi_version
from tests.e2e.servers import free_port
from tests.signals.helpers import RecordingSink
from tests.upstream_helpers import echo_build, read_body, respond, serving

HOST = {"Host": "acme.example.com"}


_made: list[tuple[Any, Upstream]] = []


def router_for(upstream: Upstream, **options: Any) -> Any:
    """v1 in process (the default), v2 upstream; acme pinned to v2. Closed after the test."""
    router = CohortRouter(
        apps={"v1": wsgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
        **options,
    )
    router.store.pin("acme", "v2")
    _made.append((router, upstream))
    return router


@pytest.fixture(autouse=True)
def _close_routers() -> Iterator[None]:
    yield
    while _made:
        router, upstream = _made.pop()
        router.close()
        upstream.close()


@pytest.fixture
def build() -> Iterator[str]:
    with serving(echo_build("v2")) as url:
        yield url


def answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    data: dict[str, Any] = json.loads(response.get_data())
    return data


def test_mixed_mounts_forward_the_decision_and_the_forwarding_headers(build: str) -> None:
    client = Client(router_for(Upstream(build)))
    response = client.get(
        "/a%2Fb%20c?x=1",
        headers={
            **HOST,
            "Connection": "X-Secret",
            "X-Secret": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic eA==",
            "X-Cohortroute-Tenant": "someone-else",
            "X-Cohortroute-Version": "v9",
            "X-Forwarded-For": "192.0.2.7",
        },
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    got = answer(response)
    assert response.headers["X-Build"] == "v2"
    assert (got["build"], got["path"], got["query"]) == ("v2", "/a%2Fb%20c", "x=1")
    headers = got["headers"]
    assert headers["host"] == "acme.example.com"
    assert headers["x-cohortroute-tenant"] == "acme"
    assert headers["x-cohortroute-version"] == "v2"
    assert headers["x-cohortroute-reason"] == "pin"
    assert headers["x-forwarded-for"] == "192.0.2.7, 10.1.2.3"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "acme.example.com"
    assert headers["forwarded"] == 'for=10.1.2.3;proto=http;host="acme.example.com"'
    for hop in ("x-secret", "keep-alive", "proxy-authorization", "user-agent", "accept"):
        assert hop not in headers, hop
    # Another tenant is served in process by the default.
    other = client.get("/", headers={"Host": "other.example.com"})
    assert other.get_data(as_text=True) == "v1 other default |/"


def test_a_unix_socket_upstream_and_a_1_mib_body_both_ways(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def big(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        await respond(send, body * 2)

    with serving(big, unix_path=str(tmp_path / "v2.sock")) as url:
        assert url.startswith("unix:/")
        response = Client(router_for(Upstream(url))).post("/upload", data=payload, headers=HOST)
        assert response.status_code == 200
        assert response.get_data() == payload * 2


def test_pooled_connections_are_kept_alive(build: str) -> None:
    client = Client(router_for(Upstream(build)))
    ports = {answer(client.get("/", headers=HOST))["peer_port"] for _ in range(5)}
    assert len(ports) == 1


def test_the_response_is_streamed_not_buffered() -> None:
    release = threading.Event()

    async def slow_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        if not await asyncio.to_thread(release.wait, 5):
            await send({"type": "http.response.body", "body": b"|it waited|", "more_body": True})
        await send({"type": "http.response.body", "body": b"second"})

    with serving(slow_stream) as url:
        router = router_for(Upstream(url))
        environ = EnvironBuilder("/", headers=list(HOST.items())).get_environ()
        statuses: list[str] = []
        body = router(environ, lambda status, headers, exc_info=None: statuses.append(status))
        chunks = iter(body)
        first = next(chunks)  # arrives while the build still holds the rest back
        release.set()
        rest = b"".join(chunks)
        body.close()
        assert statuses == ["200 OK"]
        assert (first, rest) == (b"first", b"second")


class _HeldInput:
    """A request body whose second half is only given once the build has read the first."""

    def __init__(self, first: bytes, second: bytes, seen: threading.Event) -> None:
        self._parts = [first, second]
        self._seen = seen
        self.starved = False

    def read(self, size: int = -1) -> bytes:
        if not self._parts:
            return b""
        if len(self._parts) == 1 and not self._seen.wait(5):
            self.starved = True  # the router held the body back until it had all of it
        return self._parts.pop(0)


def test_the_request_body_is_streamed_not_buffered() -> None:
    seen = threading.Event()
    first, second = b"a" * 1000, b"b" * 1000

    async def reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) >= len(first):
                seen.set()
            if not message.get("more_body"):
                break
        await respond(send, f"{body.count(b'a')}+{body.count(b'b')}".encode())

    with serving(reader) as url:
        router = router_for(Upstream(url))
        body = _HeldInput(first, second, seen)
        environ = EnvironBuilder("/", method="POST", headers=list(HOST.items())).get_environ()
        environ["CONTENT_LENGTH"] = str(len(first) + len(second))
        environ["wsgi.input"] = body
        out = router(environ, lambda status, headers, exc_info=None: None)
        assert b"".join(out) == b"1000+1000"
        assert not body.starved


def test_a_down_upstream_is_a_502_naming_the_version_but_not_the_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = Client(router_for(Upstream(f"http://127.0.0.1:{port}")))
    with caplog.at_level(logging.WARNING):
        response = client.get("/", headers=HOST)
    assert response.status_code == 502
    text = response.get_data(as_text=True)
    assert text.startswith("502 Bad Gateway: version v2 is unavailable")
    assert str(port) not in text and "127.0.0.1" not in text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert f"http://127.0.0.1:{port} for version v2 refused the connection" in caplog.text
    missing = Client(router_for(Upstream(f"unix:{tmp_path}/none.sock")))
    with caplog.at_level(logging.WARNING):
        response = missing.get("/", headers=HOST)
    assert response.status_code == 502
    assert str(tmp_path) not in response.get_data(as_text=True)
    assert f"unix:{tmp_path}/none.sock for version v2 has no socket file there" in caplog.text


def test_a_slow_upstream_is_a_504() -> None:
    release = threading.Event()

    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.to_thread(release.wait, 5)
        await respond(send, b"late")

    with serving(stuck) as url:
        client = Client(router_for(Upstream(url, read_timeout=0.2)))
        try:
            response = client.get("/", headers=HOST)
        finally:
            release.set()
        assert response.status_code == 504
        assert "did not answer in time" in response.get_data(as_text=True)


def test_response_hop_by_hop_headers_date_and_server_are_not_relayed() -> None:
    relayed = response_headers(
        [
            (b"Connection", b"close, X-Trace"),
            (b"X-Trace", b"1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Date", b"Tue, 01 Dec 2026 00:00:00 GMT"),
            (b"Server", b"gunicorn"),
            (b"Set-Cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ]
    )
    assert relayed == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]


def test_build_side_signals_count_the_tenant_the_router_decided() -> None:
    sink = RecordingSink()
    counted = Signals(
        echo_build("v2"), version="v2", store="memory://", config=SignalsConfig(sink=sink)
    )
    with serving(counted) as url:
        client = Client(router_for(Upstream(url)))
        for _ in range(3):
            answer(client.get("/", headers=HOST))
        counted.flush()
    counted.close()
    [row] = sink.rows(0)
    assert (row.tenant, row.version, row.requests) == ("acme", "v2", 3)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host", "give http://host:port or unix:/path/to/server.sock"),
        ("unix:relative.sock", "absolute path"),
        ("http://h:1/?q=1", "no query"),
    ],
)
def test_bad_addresses_say_what_to_give(url: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Upstream(url)


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="read_timeout must be seconds > 0"):
        Upstream("http://127.0.0.1:1", read_timeout=0)
    with pytest.raises(ConfigurationError, match="max_connections"):
        Upstream("http://127.0.0.1:1", max_connections=0)

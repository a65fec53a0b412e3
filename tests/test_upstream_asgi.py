"""Upstream under the ASGI router: HTTP forwarded over httpx's async client, websockets relayed,
the pool closed at lifespan shutdown. The build is a real uvicorn server in a thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream
from tests.apps import asgi_version, communicator
from tests.e2e.servers import free_port
from tests.upstream_helpers import echo_build, serving

HOST = (b"host", b"acme.example.com")


def make(upstream: Upstream) -> Any:
    router = CohortRouter(
        apps={"v1": asgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")
    return router


def http_scope(path: str = "/", body: bytes = b"") -> dict[str, Any]:
    headers = [HOST, (b"connection", b"x-hop"), (b"x-hop", b"1")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"q=1",
        "root_path": "",
        "headers": headers,
        "client": ("10.0.0.9", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Any, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    comm = communicator(app, scope)
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await comm.receive_output(5)
    data = b""
    while True:
        message = await comm.receive_output(5)
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(5)
    return start["status"], data


async def lifespan(app: Any, inside: Any) -> Any:
    """Run ``inside()`` between the router's lifespan startup and shutdown."""
    comm = communicator(app, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await comm.send_input({"type": "lifespan.startup"})
    assert (await comm.receive_output(5))["type"] == "lifespan.startup.complete"
    result = await inside()
    await comm.send_input({"type": "lifespan.shutdown"})
    assert (await comm.receive_output(5))["type"] == "lifespan.shutdown.complete"
    return result


@pytest.fixture
def build() -> Iterator[str]:
    with serving(echo_build("v2")) as url:
        yield url


def test_http_is_forwarded_with_the_decision_and_the_pool_closes_at_shutdown(build: str) -> None:
    upstream = Upstream(build)
    router = make(upstream)

    async def inside() -> tuple[int, bytes]:
        return await call(router, http_scope("/p%2Fq", b"x" * 70_000), b"x" * 70_000)

    status, body = asyncio.run(lifespan(router, inside))
    router.close()
    got = json.loads(body)
    assert status == 200
    assert (got["build"], got["path"], got["query"], got["body_length"]) == (
        "v2",
        "/p%2Fq",
        "q=1",
        70_000,
    )
    headers = got["headers"]
    assert headers["x-cohortroute-tenant"] == "acme"
    assert headers["x-cohortroute-reason"] == "pin"
    assert headers["forwarded"] == 'for=10.0.0.9;proto=https;host="acme.example.com"'
    assert "x-hop" not in headers
    assert len(upstream.asgi()._clients) == 0  # shutdown closed the pool


def test_a_down_upstream_is_a_502_under_asgi(tmp_path: Path) -> None:
    for address in (f"http://127.0.0.1:{free_port()}", f"unix:{tmp_path}/gone.sock"):
        upstream = Upstream(address)
        router = make(upstream)

        async def inside() -> tuple[int, bytes]:
            return await call(router, http_scope())  # noqa: B023 - awaited at once

        status, body = asyncio.run(lifespan(router, inside))
        router.close()
        assert status == 502
        assert body.decode().startswith("502 Bad Gateway: version v2 is unavailable")
        assert address.split(":")[-1] not in body.decode()  # neither the port nor the path


async def chat(scope_host: bytes, router: Any) -> list[dict[str, Any]]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", scope_host)],
        "subprotocols": ["chat"],
        "client": ("10.0.0.9", 5000),
    }
    comm = communicator(router, scope)
    await comm.send_input({"type": "websocket.connect"})
    seen = [await comm.receive_output(5)]
    if seen[0]["type"] == "websocket.accept":
        await comm.send_input({"type": "websocket.receive", "text": "hello"})
        seen.append(await comm.receive_output(5))
        await comm.send_input({"type": "websocket.receive", "bytes": b"\x00\x01"})
        seen.append(await comm.receive_output(5))
        await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(5)
    return seen


async def websocket_build(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes each message with the tenant the router named, in the subprotocol asked."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
    tenant = dict(scope["headers"])[b"x-cohortroute-tenant"].decode()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": f"{tenant}: {message['text']}"})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


def test_websockets_are_relayed_both_ways(tmp_path: Path) -> None:
    with serving(websocket_build, unix_path=str(tmp_path / "ws.sock")) as url:
        upstream = Upstream(url)
        router = make(upstream)
        seen = asyncio.run(chat(b"acme.example.com", router))
        router.close()
    assert (seen[0]["type"], seen[0]["subprotocol"]) == ("websocket.accept", "chat")
    assert seen[1] == {"type": "websocket.send", "text": "acme: hello"}
    assert seen[2] == {"type": "websocket.send", "bytes": b"\x01\x00"}


def test_a_websocket_to_a_down_upstream_is_closed_before_it_opens() -> None:
    router = make(Upstream(f"http://127.0.0.1:{free_port()}"))
    seen = asyncio.run(chat(b"acme.example.com", router))
    router.close()
    assert seen == [{"type": "websocket.close", "code": 1014}]

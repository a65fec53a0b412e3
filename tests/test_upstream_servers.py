"""Upstream under real ASGI servers: a router of Upstreams served by uvicorn and by hypercorn
with asyncio and trio workers forwards HTTP and websockets to a real build (uvicorn in a
thread), and answers a build that is down with the 502 that names only the version."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client

from tests.e2e.servers import bin_path, free_port, serve
from tests.upstream_helpers import echo_build, serving

SERVERS = ["uvicorn", "hypercorn-asyncio", "hypercorn-trio"]
APP = "tests.upstream_router_app:app"


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [bin_path("uvicorn"), "--host", "127.0.0.1", "--port", str(port), APP]
    worker = server.split("-")[1]
    return [bin_path("hypercorn"), "-k", worker, "-b", f"127.0.0.1:{port}", APP]


async def echo_or_chat(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The build: HTTP answered by :func:`echo_build`, websockets echoed with the tenant."""
    if scope["type"] == "http":
        await echo_build("v2")(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    tenant = dict(scope["headers"])[b"x-cohortroute-tenant"].decode()
    while (message := await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": f"{tenant}: {message.get('text')}"})


@pytest.fixture(scope="module")
def build() -> Iterator[str]:
    with serving(echo_or_chat) as url:
        yield url


@pytest.mark.parametrize("server", SERVERS)
def test_http_and_websockets_are_forwarded_under_each_server(server: str, build: str) -> None:
    port = free_port()
    with serve(command(server, port), port, env={"UPSTREAM_URL": build}):
        response = httpx.get(
            f"http://127.0.0.1:{port}/p?q=1", headers={"Host": "acme.example.com"}, timeout=10
        )
        with websockets.sync.client.connect(
            "ws://acme.example.com/ws",
            sock=socket.create_connection(("127.0.0.1", port)),
            open_timeout=10,
        ) as ws:
            ws.send("hello")
            said = ws.recv(timeout=10)
    assert response.status_code == 200
    got = response.json()
    assert (got["build"], got["path"], got["query"]) == ("v2", "/p", "q=1")
    assert got["headers"]["x-cohortroute-tenant"] == "acme"
    assert said == "acme: hello"


@pytest.mark.parametrize("server", SERVERS)
def test_a_down_build_is_a_502_naming_only_the_version_under_each_server(server: str) -> None:
    port, down = free_port(), free_port()
    env = {"UPSTREAM_URL": f"http://127.0.0.1:{down}"}
    with serve(command(server, port), port, env=env) as process:
        response = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"Host": "acme.example.com"}, timeout=10
        )
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert response.status_code == 502
    assert response.text == (
        "502 Bad Gateway: version v2 is unavailable (its server could not be reached); "
        "the operator's log has the details.\n"
    )
    assert f"upstream http://127.0.0.1:{down} for version v2 refused the connection" in output

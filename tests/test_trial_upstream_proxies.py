"""Real nginx and Apache in front of a build, from the generated fragments: websockets reach
the build (the ASGI router forwards them, so must the proxies) and an encoded slash passes."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from cohortroute.proxyconf import Decider, Pools, Table, apache, nginx
from cohortroute.proxyconf.options import ProxySetup
from cohortroute.store import open_store
from tests.e2e import proxies
from tests.e2e.servers import free_port, serve
from tests.upstream_helpers import read_body, respond, serving

pytestmark = pytest.mark.e2e


async def ws_or_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A websocket echoes each text with ``echo:``; HTTP answers the raw path as JSON."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": "echo:" + message["text"]})
        return
    await read_body(receive)
    await respond(send, json.dumps(scope["raw_path"].decode("latin-1")).encode())


@pytest.fixture
def build() -> Iterator[int]:
    with serving(ws_or_echo) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def directory() -> Iterator[Path]:
    with proxies.world_readable("cohortroute-trial-") as made:
        yield made


def _fragment(directory: Path, build: int, port: int, module: Any) -> Path:
    store = open_store("memory://")
    store.register_versions(["v1"], "v1", actor="test")
    pools = Pools.parse([f"v1=127.0.0.1:{build}"])
    decider = Decider(store, pools, domains=["shop.test"])
    map_path = directory / "cohortroute.map"
    setup = ProxySetup(("shop.test",), pools, str(map_path), f"127.0.0.1:{port}")
    table = Table.build(decider)
    decider.close()
    map_path.write_text(module.map_file(table))
    if module is nginx:
        Path(nginx.sizes_path(str(map_path))).write_text(nginx.sizes_file(table))
    fragment = directory / "fragment.conf"
    fragment.write_text(module.config(setup))
    return fragment


def _chat(port: int) -> str:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with connect("ws://acme.shop.test/chat", sock=sock, open_timeout=5) as websocket:
        websocket.send("hi")
        return str(websocket.recv(timeout=5))


def _get(port: int, target: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest("GET", target, skip_host=True)
        connection.putheader("Host", "acme.shop.test")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.skipif(not proxies.installed("nginx"), reason="Debian's nginx is not installed")
def test_nginx_forwards_websockets_and_keeps_plain_requests_alive(
    directory: Path, build: int
) -> None:
    port = free_port()
    conf = proxies.nginx_main(directory, _fragment(directory, build, port, nginx))
    with contextlib.ExitStack() as stack:
        stack.enter_context(serve(proxies.nginx_command(conf), port))
        assert _get(port, "/plain") == (200, '"/plain"')
        assert _chat(port) == "echo:hi"


needs_apache = pytest.mark.skipif(
    not proxies.installed("apache2"), reason="Debian's apache2 is not installed"
)


@needs_apache
def test_apache_forwards_websockets(directory: Path, build: int) -> None:
    port = free_port()
    conf = proxies.apache_main(directory, _fragment(directory, build, port, apache), port)
    with serve(proxies.apache_command(conf), port):
        assert _chat(port) == "echo:hi"


@needs_apache
def test_apache_passes_an_encoded_slash_to_the_build(directory: Path, build: int) -> None:
    port = free_port()
    conf = proxies.apache_main(directory, _fragment(directory, build, port, apache), port)
    with serve(proxies.apache_command(conf), port):
        assert _get(port, "/a%2Fb?q=%E2%9C%93") == (200, '"/a%2Fb"')

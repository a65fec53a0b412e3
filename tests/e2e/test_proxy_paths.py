"""Real Apache and nginx in front of a backend that echoes the request line's raw target:
percent-encoded paths and query strings reach the build as the client sent them."""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from cohortroute.proxyconf import Decider, Pools, Table, apache, nginx
from cohortroute.proxyconf.options import ProxySetup
from cohortroute.store import open_store
from tests.e2e import proxies
from tests.e2e.servers import free_port, serve

pytestmark = pytest.mark.e2e

PATHS = ["/a%20b", "/a%23b", "/caf%C3%A9", "/plain/path", "/search?q=a%26b&x=%2F"]


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.path.encode()  # the request target exactly as received
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[int]:
    with proxies.http_backend(_Echo) as port:
        yield port


@pytest.fixture
def directory() -> Iterator[Path]:
    with proxies.world_readable("cohortroute-paths-") as made:
        yield made


def _raw_get(port: int, target: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest("GET", target, skip_host=True)
        connection.putheader("Host", "acme.shop.test")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _setup(directory: Path, echo: int, port: int, module: object) -> Path:
    store = open_store("memory://")
    store.register_versions(["v1"], "v1", actor="test")
    store.pin("acme", "v1")
    pools = Pools.parse([f"v1=127.0.0.1:{echo}"])
    decider = Decider(store, pools, domains=["shop.test"])
    map_path = directory / "cohortroute.map"
    setup = ProxySetup(("shop.test",), pools, str(map_path), f"127.0.0.1:{port}")
    table = Table.build(decider)
    decider.close()
    map_path.write_text(module.map_file(table))  # type: ignore[attr-defined]
    if module is nginx:
        Path(nginx.sizes_path(str(map_path))).write_text(nginx.sizes_file(table))
    fragment = directory / "fragment.conf"
    fragment.write_text(module.config(setup))  # type: ignore[attr-defined]
    return fragment


@pytest.mark.skipif(not proxies.installed("apache2"), reason="Debian's apache2 is not installed")
def test_apache_forwards_the_encoded_path_and_query(directory: Path, echo: int) -> None:
    port = free_port()
    fragment = _setup(directory, echo, port, apache)
    conf = proxies.apache_main(directory, fragment, port)
    with serve(proxies.apache_command(conf), port):
        for target in PATHS:
            assert _raw_get(port, target) == (200, target)


@pytest.mark.skipif(not proxies.installed("nginx"), reason="Debian's nginx is not installed")
def test_nginx_forwards_the_encoded_path_and_query(directory: Path, echo: int) -> None:
    port = free_port()
    fragment = _setup(directory, echo, port, nginx)
    conf = proxies.nginx_main(directory, fragment)
    with contextlib.ExitStack() as stack:
        stack.enter_context(serve(proxies.nginx_command(conf), port))
        for target in PATHS:
            assert _raw_get(port, target) == (200, target)

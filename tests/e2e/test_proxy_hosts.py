"""nginx, HAProxy and Apache answer each Host as the router does: 400 for what its Host
validation rejects, the default for IP literals, the tenant's pool otherwise."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from cohortroute.proxyconf import Decider, Pools, Table, apache, haproxy, nginx
from cohortroute.proxyconf.options import ProxySetup
from cohortroute.store import open_store
from tests.e2e import proxies
from tests.e2e.servers import free_port, serve

pytestmark = pytest.mark.e2e

HOSTS = [
    "acme.shop.test",
    "ACME.Shop.Test.",
    "acme.shop.test:8080",
    "shop.test",
    "www.shop.test",
    "a.b.shop.test",
    "127.0.0.1",
    "127.0.0.1:80",
    "[::1]",
    "[::1]:8080",
    "\uff41\uff43\uff4d\uff45.shop.test",  # fullwidth: not ASCII
    "acme_x.shop.test",
    "-acme.shop.test",
    "acme-.shop.test",
    "x" * 64 + ".shop.test",
    "x" * 63 + ".shop.test",
    "acme.shop.test:0080",
    "acme.shop.test:0",
    "acme.shop.test:65536",
    "acme.shop.test..",
    "evil.org",
]
#: What the generated configurations cannot check with a regular expression (documented in
#: docs/deploying.md): an xn-- label that is not a valid IDNA A-label.
NOT_CHECKED = ["xn--abc.shop.test"]


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    with proxies.http_backend(_Ok) as port:
        yield port


@pytest.fixture
def directory() -> Iterator[Path]:
    with proxies.world_readable("cohortroute-hosts-") as made:
        yield made


def status(port: int, host: str) -> int:
    """The status for one GET with ``Host: host`` sent as raw bytes (UTF-8 when not ASCII)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("kind", ["nginx", "haproxy", "apache"])
def test_the_proxy_answers_each_host_as_the_router(
    kind: str, directory: Path, backend: int
) -> None:
    if not proxies.installed("apache2" if kind == "apache" else kind):
        pytest.skip(f"Debian's {kind} is not installed")
    store = open_store("memory://")
    store.register_versions(["v1"], "v1", actor="test")
    store.pin("acme", "v1")
    pools = Pools.parse([f"v1=127.0.0.1:{backend}"])
    decider = Decider(store, pools, domains=["shop.test"])
    expected = {host: decider.host(host)[0] for host in HOSTS + NOT_CHECKED}
    table = Table.build(decider)
    decider.close()
    assert expected["acme.shop.test"] == expected["127.0.0.1"] == expected["[::1]"] == 200
    assert expected["acme.shop.test:0080"] == expected["x" * 64 + ".shop.test"] == 400
    port = free_port()
    map_path = directory / "cohortroute.map"
    setup = ProxySetup(("shop.test",), pools, str(map_path), f"127.0.0.1:{port}")
    module = {"nginx": nginx, "haproxy": haproxy, "apache": apache}[kind]
    map_path.write_text(module.map_file(table))
    Path(nginx.sizes_path(str(map_path))).write_text(nginx.sizes_file(table))
    fragment = directory / "fragment.conf"
    fragment.write_text(module.config(setup))
    with contextlib.ExitStack() as stack:
        if kind == "nginx":
            command = proxies.nginx_command(proxies.nginx_main(directory, fragment))
        elif kind == "haproxy":
            command = proxies.haproxy_command(proxies.haproxy_main(directory, fragment))
        else:
            command = proxies.apache_command(proxies.apache_main(directory, fragment, port))
        stack.enter_context(serve(command, port))
        served = {host: status(port, host) for host in HOSTS}
        assert served == {host: expected[host] for host in HOSTS}
        # Documented difference: the proxy serves what only the IDNA check would refuse.
        assert expected["xn--abc.shop.test"] == 400
        assert status(port, "xn--abc.shop.test") == 200

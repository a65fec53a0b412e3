"""End to end: two builds of one package (``shop``) with different code, each in its own
gunicorn on a unix socket, the router in front with an ``Upstream`` per build.

The builds are examples/two_builds/releases/*; each wraps itself in ``cohortroute.Signals``, so
the requests of each tenant are counted for the build that served them.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohortroute import CohortRouter
from cohortroute.signals import open_sink
from cohortroute.store import open_store
from tests.e2e import proxies
from tests.e2e.servers import ROOT, bin_path, free_port, get, serve
from tests.test_faults import poll

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "two_builds"
RELEASES = ("2026.11", "2026.12")


def build(release: str, sock: Path, store: str) -> Any:
    """gunicorn serving one release's ``shop`` on ``sock``; stopped (and flushed) at the end.
    The build finds its own ``shop`` through ``--chdir`` only."""
    command = [bin_path("gunicorn"), "--chdir", str(EXAMPLE / "releases" / release)]
    command += ["--bind", f"unix:{sock}", "--workers", "2", "--graceful-timeout", "5"]
    command.append("shop.app:application")
    return serve(command, 0, env={"COHORTROUTE_STORE": store}, unix_socket=str(sock))


def test_two_builds_of_one_package_serve_their_own_code_to_their_own_tenants(
    tmp_path: Path,
) -> None:
    store_url = f"sqlite:///{tmp_path}/routing.db"
    store = open_store(store_url)
    store.register_versions(list(RELEASES), "2026.11", actor="test")
    store.pin("acme", "2026.12")
    sockets = {release: tmp_path / f"shop-{release}.sock" for release in RELEASES}
    port = free_port()
    router = [bin_path("gunicorn"), "--chdir", str(EXAMPLE), "-b", f"127.0.0.1:{port}", "-w", "2"]
    router.append("router:app")
    env = {
        "COHORTROUTE_STORE": store_url,
        "SHOP_2026_11": f"unix:{sockets['2026.11']}",
        "SHOP_2026_12": f"unix:{sockets['2026.12']}",
    }
    with contextlib.ExitStack() as stack:
        for release in RELEASES:
            stack.enter_context(build(release, sockets[release], store_url))
        stack.enter_context(serve(router, port, env=env))
        assert get(port, "acme.shop.test", "/ab") == (
            200,
            "release=2026.12 tenant=acme price(ab)=180 New checkout\n",
        )
        assert get(port, "globex.shop.test", "/ab") == (
            200,
            "release=2026.11 tenant=globex price(ab)=200 Old checkout\n",
        )
        for _ in range(4):
            assert get(port, "acme.shop.test")[1].startswith("release=2026.12 tenant=acme")
        # A pin made elsewhere (the CLI, another host) is followed within the refresh interval.
        store.pin("globex", "2026.12")
        moved = poll(lambda: "2026.12" in get(port, "globex.shop.test")[1], timeout=10)
        assert moved is not None and moved < 5
        assert get(port, "www.shop.test")[1].startswith("release=2026.11 tenant=-")
        assert get(port, "evil.example.org")[0] == 400
    store.close()
    # The builds flushed their signals at exit: each tenant counted for the build that served it.
    sink = open_sink(store_url)
    served: dict[tuple[str, str], int] = {}
    for row in sink.rows(0):
        served[(row.tenant, row.version)] = served.get((row.tenant, row.version), 0) + row.requests
    sink.close()
    assert served[("acme", "2026.12")] == 5
    assert served[("globex", "2026.11")] >= 1  # and the polls before the pin was seen
    assert served[("globex", "2026.12")] >= 1
    assert ("acme", "2026.11") not in served


# --- nginx, HAProxy and Apache in front, routing from the store -------------------------------

DOMAIN = "shop.test"
TENANTS = [f"c{index:04d}" for index in range(1000)]
#: How soon a change in the store reaches the proxy: the watch's interval (0.2 s) plus a reload.
FOLLOWS_WITHIN = 5.0


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, int]]:
    """The two releases of ``shop`` on TCP ports, as the proxies' upstream pools."""
    ports = {release: free_port() for release in RELEASES}
    with contextlib.ExitStack() as stack:
        for release, port in ports.items():
            command = [bin_path("gunicorn"), "--chdir", str(EXAMPLE / "releases" / release)]
            command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "shop.app:application"]
            stack.enter_context(serve(command, port))
        yield ports


@pytest.fixture
def world_readable() -> Iterator[Path]:
    """A directory the proxies' unprivileged workers (www-data, nobody) can read."""
    with proxies.world_readable("cohortroute-proxy-") as directory:
        yield directory


def seed(url: str) -> None:
    """1,000 tenants: a rollout of 2026.12 at 30 %, pins, a tag rule and a ratchet."""
    store = open_store(url)
    store.register_versions(list(RELEASES), "2026.11", actor="test")
    store.register_tenants(TENANTS, tags={"c0001": ["beta"], "c0002": ["beta"]})
    store.pin("c0000", "2026.12")
    store.pin("c0003", "2026.11")
    store.set_rule("beta", "2026.12")
    store.start_rollout("2026.12", 30, salt="e2e")
    store.close()


def truth(url: str, tenants: list[str]) -> dict[str, str]:
    """What ``explain`` says each tenant is served: a router mounting both releases."""
    router: Any = CohortRouter(
        apps={release: _unused for release in RELEASES},
        domains=[DOMAIN],
        store=url,
        register_tenants=False,
    )
    try:
        return {tenant: router.explain(tenant).version for tenant in tenants}
    finally:
        router.close()


def _unused(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise AssertionError("only explain() is called")


def fetch(port: int, host: str) -> tuple[int, str]:
    """One request on a fresh connection (a reload may have retired the last one)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/ab", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def sweep(port: int, tenants: list[str]) -> dict[str, str]:
    """The release each tenant is served through the proxy, on one kept-alive connection.

    A graceful reload (nginx's, on a map change) closes idle kept-alive connections; as every
    HTTP client does for an idempotent request, a GET the server dropped unanswered is sent
    again once on a fresh connection. A second drop, or any answer but 200, fails the sweep.
    """
    served = {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for tenant in tenants:
            for attempt in (1, 2):
                try:
                    connection.request("GET", "/ab", headers={"Host": f"{tenant}.{DOMAIN}"})
                    response = connection.getresponse()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    connection.close()
                    if attempt == 2:
                        raise
            body = response.read().decode()
            assert response.status == 200, (tenant, response.status, body)
            served[tenant] = body.split()[0].removeprefix("release=")
    finally:
        connection.close()
    return served


def release_of(port: int, host: str) -> str:
    status, body = fetch(port, host)
    return body.split()[0].removeprefix("release=") if status == 200 else str(status)


@contextlib.contextmanager
def watching(arguments: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """``cohortroute ... proxy ... --watch`` in the background until the block ends."""
    process = subprocess.Popen(
        [bin_path("cohortroute"), *arguments, "--watch", "--interval", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Ready once it says so: its first step (and the proxy reload that follows) is done.
        assert process.stderr is not None
        said = ""
        while not said.endswith("(Ctrl-C stops)\n"):
            line = process.stderr.readline().decode()
            assert line, f"the watch exited before it was ready:\n{said}"
            said += line
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def cli(arguments: list[str]) -> None:
    result = subprocess.run(
        [bin_path("cohortroute"), *arguments], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


PROXIES = ["nginx", "nginx-decide", "haproxy", "apache", "apache-prg"]


@pytest.mark.parametrize("kind", PROXIES)
def test_the_proxy_routes_1000_tenants_where_explain_says(
    kind: str, upstreams: dict[str, int], world_readable: Path
) -> None:
    program = kind.split("-")[0]
    if not proxies.installed("apache2" if program == "apache" else program):
        pytest.skip(f"Debian's {program} is not installed")
    directory = world_readable
    url = f"sqlite:///{directory}/routing.db"
    seed(url)
    port = free_port()
    fragment, map_path = directory / "fragment.conf", directory / "cohortroute.map"
    arguments = ["--store", url, "proxy", program, "--domain", DOMAIN]
    for release, upstream_port in upstreams.items():
        arguments += ["--upstream", f"{release}=127.0.0.1:{upstream_port}"]
    arguments += ["--map", str(map_path), "--listen", f"127.0.0.1:{port}"]
    decide_port = free_port()
    if kind == "nginx-decide":
        arguments += ["--decide", f"127.0.0.1:{decide_port}"]
    if kind == "apache-prg":
        arguments.append("--prg")
    cli([*arguments, "--config", str(fragment)])
    with contextlib.ExitStack() as stack:
        if program == "nginx":
            conf = proxies.nginx_main(directory, fragment)
            stack.enter_context(serve(proxies.nginx_command(conf), port))
            reload = " ".join([*proxies.nginx_command(conf), "-s", "reload"])
            watch = [*arguments, "--reload-command", reload]
        elif program == "haproxy":
            conf = proxies.haproxy_main(directory, fragment)
            stack.enter_context(serve(proxies.haproxy_command(conf), port))
            watch = [*arguments, "--runtime-api", f"unix:{directory}/haproxy-admin.sock"]
        else:
            conf = proxies.apache_main(directory, fragment, port)
            stack.enter_context(serve(proxies.apache_command(conf), port))
            watch = arguments
        if kind == "nginx-decide":
            decide = ["--store", url, "proxy", "decide", "--domain", DOMAIN]
            for release, upstream_port in upstreams.items():
                decide += ["--upstream", f"{release}=127.0.0.1:{upstream_port}"]
            decide += ["--listen", f"127.0.0.1:{decide_port}", "--interval", "0.2"]
            stack.enter_context(serve([bin_path("cohortroute"), *decide], decide_port))
        else:
            stack.enter_context(watching(watch))

        expected = truth(url, TENANTS)
        assert set(expected.values()) == set(RELEASES)
        assert sweep(port, TENANTS) == expected

        # Hosts: outside the domain 400, www and the apex the default, case and port ignored.
        assert fetch(port, "shop.evil.org")[0] == 400
        assert release_of(port, f"www.{DOMAIN}") == "2026.11"
        assert release_of(port, DOMAIN) == "2026.11"
        assert release_of(port, f"C0000.{DOMAIN}:{port}") == "2026.12"
        # A tenant the store has never seen: decided live by its bucket, or the map's default.
        newcomer = next(
            t for t, v in truth(url, [f"new{i}" for i in range(50)]).items() if v == "2026.12"
        )
        live = kind in ("nginx-decide", "apache-prg")
        assert release_of(port, f"{newcomer}.{DOMAIN}") == ("2026.12" if live else "2026.11")

        # A pin, then a rollout step: the proxy follows within FOLLOWS_WITHIN seconds.
        store = open_store(url)
        moved = next(t for t in TENANTS[10:] if expected[t] == "2026.11")
        store.pin(moved, "2026.12")
        took = poll(lambda: release_of(port, f"{moved}.{DOMAIN}") == "2026.12", FOLLOWS_WITHIN)
        assert took is not None, f"{kind} did not follow a pin in {FOLLOWS_WITHIN} s"
        store.set_percent(60)
        after = truth(url, TENANTS)
        stepped = [t for t in TENANTS if after[t] != expected[t] and t != moved]
        assert stepped
        took = poll(
            lambda: all(release_of(port, f"{t}.{DOMAIN}") == "2026.12" for t in stepped[:20]),
            FOLLOWS_WITHIN,
        )
        assert took is not None, f"{kind} did not follow a rollout step in {FOLLOWS_WITHIN} s"
        store.close()
        assert sweep(port, TENANTS) == after

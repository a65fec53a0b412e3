"""End to end: two builds of one package (``shop``) with different code, each in its own
gunicorn on a unix socket, the router in front with an ``Upstream`` per build.

The builds are examples/two_builds/releases/*; each wraps itself in ``cohortroute.Signals``, so
the requests of each tenant are counted for the build that served them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute.signals import open_sink
from cohortroute.store import open_store
from tests.e2e.servers import ROOT, bin_path, free_port, get, serve
from tests.test_faults import poll

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "two_builds"
RELEASES = ("2026.11", "2026.12")


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def build(release: str, sock: Path, store: str) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn serving one release's ``shop`` on ``sock``; stopped (and flushed) at the end."""
    command = [
        bin_path("gunicorn"),
        "--chdir",
        str(EXAMPLE / "releases" / release),
        "--bind",
        f"unix:{sock}",
        "--workers",
        "2",
        "--graceful-timeout",
        "5",
        "shop.app:application",
    ]
    env = dict(os.environ, COHORTROUTE_STORE=store)
    env.pop("PYTHONPATH", None)  # the build finds its own ``shop`` through --chdir only
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if poll(lambda: _listening(sock) or process.poll() is not None, timeout=20) is None:
            raise AssertionError(f"build {release} did not listen on {sock} in 20 s")
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"build {release} exited:\n{output}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout:
            process.stdout.close()


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

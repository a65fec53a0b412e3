"""Added latency of routing to builds in other processes, every figure from one run.

Run: ``python benchmarks/upstream.py`` (``--quick`` for a short run). A build (gunicorn, 2
workers) answers a small GET and reads a 1 MiB POST; each way of routing to it is measured as
p50/p99 of sequential requests, next to the client talking to the build directly. gunicorn's
sync workers close every connection after its response, so each hop to a gunicorn (the build,
the router) opens a new one, as it does in production with sync workers:

* ``router``: the WSGI router (gunicorn, 2 workers) forwarding with ``Upstream`` (httpx);
* ``nginx map``: nginx routing by the map ``cohortroute proxy nginx`` writes (if installed);
* ``nginx auth_request``: nginx asking ``cohortroute proxy decide`` per request (if installed);
* the decision endpoint's own cost per warm lookup, in process.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import proxies  # noqa: E402 - the repository's helpers for Debian's servers
from tests.e2e.servers import bin_path, free_port, serve  # noqa: E402

MIB = b"x" * (1 << 20)
HOST = "acme.bench.test"


def build_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The build: reads the whole body, answers 32 bytes."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while length > 0:
        length -= len(stream.read(min(length, 65536)) or b"x" * length)
    body = b"ok" * 16
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def router_app() -> Any:
    """The router in front of the build (``BENCH_UPSTREAM``), every tenant on it."""
    from cohortroute import CohortRouter
    from cohortroute.upstream import Upstream

    return CohortRouter(
        apps={"v1": Upstream(os.environ["BENCH_UPSTREAM"])},
        domains=["bench.test"],
        store=os.environ["BENCH_STORE"],
        register_tenants=False,
    )


def measure(port: int, count: int, body: bytes | None) -> tuple[float, float]:
    """p50 and p99 in ms of ``count`` sequential requests (one client, reconnecting when the
    server closed the connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    timings = []
    try:
        for index in range(count + 20):
            started = time.perf_counter()
            method = "POST" if body is not None else "GET"
            connection.request(method, "/", body=body, headers={"Host": HOST})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            if index >= 20:  # warm-up: connections, caches
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    quantiles = statistics.quantiles(timings, n=100)
    return quantiles[49], quantiles[98]


def gunicorn(app: str, port: int, env: dict[str, str] | None = None) -> Any:
    command = [bin_path("gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", app]
    return serve(command, port, env=env)


@contextlib.contextmanager
def nginx_in_front(store: str, build_port: int, decide_port: int | None) -> Iterator[int]:
    directory = Path(tempfile.mkdtemp(prefix="cohortroute-bench-"))
    directory.chmod(0o755)
    port = free_port()
    arguments = [bin_path("cohortroute"), "--store", store, "proxy", "nginx"]
    arguments += ["--domain", "bench.test", "--upstream", f"v1=127.0.0.1:{build_port}"]
    arguments += ["--map", str(directory / "map"), "--config", str(directory / "fragment.conf")]
    arguments += ["--listen", f"127.0.0.1:{port}"]
    if decide_port is not None:
        arguments += ["--decide", f"127.0.0.1:{decide_port}"]
    subprocess.run(arguments, check=True, capture_output=True)
    conf = proxies.nginx_main(directory, directory / "fragment.conf")
    with serve(proxies.nginx_command(conf), port):
        yield port


def report(name: str, count: int, port: int, direct: dict[str, tuple[float, float]]) -> None:
    for label, body in (("small", None), ("1 MiB", MIB)):
        p50, p99 = measure(port, count, body)
        base50, base99 = direct[label]
        print(
            f"{name:<20} {label:<6} p50 {p50:7.3f} ms (+{p50 - base50:6.3f})   "
            f"p99 {p99:7.3f} ms (+{p99 - base99:6.3f})"
        )


def decision_cost(store: str, lookups: int) -> float:
    """Microseconds per warm lookup of the decision endpoint, in process."""
    from cohortroute.proxyconf import Decider, Pools
    from cohortroute.proxyconf.endpoint import DecisionEndpoint

    decider = Decider(store, Pools.parse(["v1=127.0.0.1:1"]), domains=["bench.test"])
    endpoint = DecisionEndpoint(decider)
    environ = {"REQUEST_METHOD": "GET", "HTTP_HOST": HOST, "PATH_INFO": "/"}

    def start_response(*args: Any) -> Any:
        return None

    endpoint(dict(environ), start_response)
    started = time.perf_counter()
    for _ in range(lookups):
        endpoint(dict(environ), start_response)
    elapsed = time.perf_counter() - started
    decider.close()
    return elapsed / lookups * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    count = 200 if parser.parse_args().quick else 2000
    workdir = Path(tempfile.mkdtemp(prefix="cohortroute-bench-"))
    workdir.chmod(0o755)
    store = f"sqlite:///{workdir}/routing.db"
    from cohortroute.store import open_store

    opened = open_store(store + "?mode=rwc")
    opened.register_versions(["v1"], "v1")
    opened.close()
    build_port, router_port, decide_port = free_port(), free_port(), free_port()
    print(f"{count} sequential requests each; + is over direct")
    with contextlib.ExitStack() as stack:
        stack.enter_context(gunicorn("benchmarks.upstream:build_app", build_port))
        env = {"BENCH_UPSTREAM": f"http://127.0.0.1:{build_port}", "BENCH_STORE": store}
        stack.enter_context(gunicorn("benchmarks.upstream:router_app()", router_port, env=env))
        direct = {
            "small": measure(build_port, count, None),
            "1 MiB": measure(build_port, count, MIB),
        }
        for label, (p50, p99) in direct.items():
            print(f"{'direct':<20} {label:<6} p50 {p50:7.3f} ms            p99 {p99:7.3f} ms")
        report("router (Upstream)", count, router_port, direct)
        if proxies.installed("nginx"):
            with nginx_in_front(store, build_port, None) as port:
                report("nginx map", count, port, direct)
            decide = [bin_path("cohortroute"), "--store", store, "proxy", "decide"]
            decide += ["--domain", "bench.test", "--upstream", f"v1=127.0.0.1:{build_port}"]
            decide += ["--listen", f"127.0.0.1:{decide_port}"]
            stack.enter_context(serve(decide, decide_port))
            with nginx_in_front(store, build_port, decide_port) as port:
                report("nginx auth_request", count, port, direct)
        else:
            print("nginx is not installed: the proxy modes are not measured")
    lookups = 2000 if count < 2000 else 20000
    print(f"decision endpoint, in process: {decision_cost(store, lookups):.1f} us per warm lookup")


if __name__ == "__main__":
    main()

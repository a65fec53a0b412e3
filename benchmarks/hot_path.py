"""Hot-path benchmark: ns per warm request, CohortRouter against bare and hand-written dispatch.

Run: ``python benchmarks/hot_path.py`` (``--quick`` for a short run). Every figure comes from the
same run on the same machine, so the ratios mean something even where absolute numbers do not:

* WSGI: a bare app call, a hand-written dispatcher
  (``apps[assign[host.split(".", 1)[0]]]``), werkzeug's DispatcherMiddleware, CohortRouter warm.
* ASGI: a bare app call, a hand-written ASGI host dispatcher, CohortRouter warm.

Ratios are net of building the request (the environ copy for WSGI), as the targets are stated:
WSGI warm <= 1.5x the hand-written dispatcher and <= 0.6x DispatcherMiddleware; ASGI warm <= 1.5x
the hand-written ASGI dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from cohortroute import CohortRouter

#: The benchmarks' clock: the calling thread's CPU time in ns (on a shared machine, wall time
#: also counts the time the scheduler gave the core to someone else).
CPU_CLOCK = time.thread_time_ns

TENANTS = [f"tenant{i}" for i in range(200)]
HOSTS = [f"{t}.example.com" for t in TENANTS]


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return [b"ok"]


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def _environ(host: str) -> dict[str, Any]:
    """An environ shaped like gunicorn's for ``GET /`` from curl (same keys, same count)."""
    return {
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": object,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "gunicorn/23.0.0",
        "wsgi.input": None,
        "gunicorn.socket": None,
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "",
        "RAW_URI": "/orders/42/items",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "curl/8.5.0",
        "HTTP_ACCEPT": "*/*",
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "51234",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "PATH_INFO": "/orders/42/items",
        "SCRIPT_NAME": "",
    }


def bench(cases: dict[str, Callable[[], Any]], loops: int, repeats: int) -> dict[str, float]:
    """Median ns per call of each case over ``repeats`` rounds of ``loops`` calls.

    The cases take turns within every round, so a noisy neighbour slows them all alike and the
    ratios stay fair even when the absolute numbers move. Time is this thread's CPU time
    (:data:`CPU_CLOCK`), so the minutes another process holds the core are not counted.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = CPU_CLOCK()
            for _ in range(loops):
                fn()
            samples[name].append((CPU_CLOCK() - start) / loops)
    return {name: statistics.median(values) for name, values in samples.items()}


def steady_router(apps: dict[str, Any]) -> Any:
    """A router in steady state: half the tenants pinned to v2, every tenant registered.

    (A tenant the registry does not know yet is served through a small wrapper until the
    router's batched registration write lands; steady state is what "warm" means here.)
    """
    router = CohortRouter(apps, domains=["example.com"])
    for i, tenant in enumerate(TENANTS):
        if i % 2:
            router.store.pin(tenant, "v2")
    router.store.register_tenants(TENANTS)
    return router


def hand_written_wsgi(apps: dict[str, Any]) -> Callable[..., Any]:
    """The WSGI dispatcher a team writes by hand: odd tenants on v2, the rest on v1."""
    assign = {t: ("v2" if i % 2 else "v1") for i, t in enumerate(TENANTS)}

    def hand_written(environ: dict[str, Any], start_response: Any) -> Any:
        return apps[assign[environ["HTTP_HOST"].split(".", 1)[0]]](environ, start_response)

    return hand_written


def hand_written_asgi(apps: dict[str, Any]) -> Callable[..., Any]:
    """The ASGI dispatcher a team writes by hand: odd tenants on v2, the rest on v1."""
    assign = {t.encode(): ("v2" if i % 2 else "v1") for i, t in enumerate(TENANTS)}

    async def hand_written(scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope["headers"]:
            if name == b"host":
                await apps[assign[value.split(b".", 1)[0]]](scope, receive, send)
                return

    return hand_written


def wsgi_cases(loops: int, repeats: int) -> dict[str, float]:
    apps = {"v1": wsgi_app, "v2": wsgi_app}
    hand_written = hand_written_wsgi(apps)

    # Path-prefix mounts, the way DispatcherMiddleware is used for side-by-side versions.
    dispatcher = DispatcherMiddleware(wsgi_app, {"/v1": wsgi_app, "/v2": wsgi_app})
    router = steady_router(apps)
    cases = {
        "bare app": wsgi_app,
        "hand-written": hand_written,
        "DispatcherMiddleware": dispatcher,
        "CohortRouter": router,
    }
    return bench_wsgi(cases, loops, repeats, warm=[router])


def bench_wsgi(
    apps: dict[str, Any], loops: int, repeats: int, *, warm: Sequence[Any] = ()
) -> dict[str, float]:
    """Time each WSGI app over requests for every host in HOSTS, plus the cost of building the
    environ alone ("build environ", to net out); the ``warm`` apps see every host first."""
    environs = [_environ(h) for h in HOSTS]
    for app in warm:
        for env in environs:
            app(dict(env), _start_response)
    n = len(environs)
    counter = [0]

    def runner(app: Any) -> Callable[[], Any]:
        def call() -> Any:
            i = counter[0] = (counter[0] + 1) % n
            return app(environs[i].copy(), _start_response)

        return call

    def build_only() -> Any:
        i = counter[0] = (counter[0] + 1) % n
        return environs[i].copy()

    cases = {"build environ": build_only, **{name: runner(app) for name, app in apps.items()}}
    return bench(cases, loops, repeats)


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def asgi_cases(loops: int, repeats: int) -> dict[str, float]:
    apps = {"v1": asgi_app, "v2": asgi_app}
    router = steady_router(apps)
    cases = {"bare app": asgi_app, "hand-written": hand_written_asgi(apps), "CohortRouter": router}
    return bench_asgi(cases, loops, repeats, warm=[router])


async def _sent(message: Any) -> None:
    """The server's ``send``: takes each message and does nothing with it."""


def bench_asgi(
    apps: dict[str, Any], loops: int, repeats: int, *, warm: Sequence[Any] = ()
) -> dict[str, float]:
    """Time each ASGI app over requests for every host in HOSTS on one event loop; the
    ``warm`` apps see every host first. The cases take turns within every round."""
    scopes = [
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"user-agent", b"bench"), (b"host", h.encode()), (b"accept", b"*/*")],
        }
        for h in HOSTS
    ]
    n = len(scopes)

    async def rounds() -> dict[str, float]:
        for app in warm:
            for scope in scopes:
                await app(dict(scope), None, _sent)
        samples: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(repeats):
            for name, app in apps.items():
                start = CPU_CLOCK()
                for j in range(loops):
                    await app(scopes[j % n], None, _sent)
                samples[name].append((CPU_CLOCK() - start) / loops)
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(rounds())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops, for a smoke run")
    args = parser.parse_args(argv)
    loops, repeats = (5_000, 5) if args.quick else (50_000, 15)

    wsgi = wsgi_cases(loops, repeats)
    base = wsgi.pop("build environ")
    print(
        f"WSGI (ns/request, median of {repeats} x {loops}; environ copy {base:.0f} ns netted out)"
    )
    net = {k: v - base for k, v in wsgi.items()}
    for name, value in net.items():
        print(f"  {name:22s} {value:8.0f}")
    wsgi_vs_hand = net["CohortRouter"] / net["hand-written"]
    wsgi_vs_dm = net["CohortRouter"] / net["DispatcherMiddleware"]
    print(f"  CohortRouter / hand-written         = {wsgi_vs_hand:.2f}x  (target <= 1.5x)")
    print(f"  CohortRouter / DispatcherMiddleware = {wsgi_vs_dm:.2f}x  (target <= 0.6x)")

    asgi = asgi_cases(loops, repeats)
    print(f"ASGI (ns/request, median of {repeats} x {loops})")
    for name, value in asgi.items():
        print(f"  {name:22s} {value:8.0f}")
    asgi_vs_hand = asgi["CohortRouter"] / asgi["hand-written"]
    print(f"  CohortRouter / hand-written         = {asgi_vs_hand:.2f}x  (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Signals benchmark: the cost of counting a request, and of flushing 100k tenants.

Run: ``python benchmarks/signals.py`` (``--quick`` for a short run; ``--services`` also flushes
to Redis and PostgreSQL from ``COHORTROUTE_TEST_REDIS_URL`` / ``COHORTROUTE_TEST_POSTGRES_URL``).
Every figure comes from the same run, so the ratios mean something even where absolute numbers
do not:

* WSGI warm request: a bare app call, the hand-written dispatcher, CohortRouter with signals
  off and on. Targets: signals on <= 0.5 us more than off, and <= 4x the hand-written
  dispatcher (both net of building the environ, as in hot_path.py).
* ASGI warm request: the same four cases on one event loop (no target is stated for ASGI).
* The floor: what any per-request counting in Python must pay on this machine, measured in the
  same run as three bare wrappers around the app (a pass-through call, the two clock reads that
  time the request, the ``start_response`` interception that learns the status) and the
  counting of one request into a row.
* Memory held per counted (tenant, version) row, measured with tracemalloc.
* One flush of 100k active tenants (one row each) to SQLite (and Redis, PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hot_path import TENANTS, bench_asgi, bench_wsgi, hand_written_asgi, hand_written_wsgi

from cohortroute import CohortRouter, SignalsConfig
from cohortroute._clock import SYSTEM
from cohortroute.signals import Recorder, open_sink
from cohortroute.signals.context import THREAD, thread_slot
from cohortroute.signals.model import SignalSink
from cohortroute.signals.sinks.memory import MemorySink
from cohortroute.signals.tenants import Tenants
from cohortroute.signals.wsgi import SignalsWSGI

_HEADERS = [("Content-Type", "text/plain")]
_BODY = [b"ok"]


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """What every real app does: start the response, return the body."""
    start_response("200 OK", _HEADERS)
    return _BODY


def _router(apps: dict[str, Any], signals: bool) -> Any:
    config = SignalsConfig(sink=MemorySink(), flush_interval=3600) if signals else False
    router = CohortRouter(apps, domains=["example.com"], signals=config)
    for i, tenant in enumerate(TENANTS):
        if i % 2:
            router.store.pin(tenant, "v2")
    router.store.register_tenants(TENANTS)
    return router


def request_cost(loops: int, repeats: int) -> dict[str, float]:
    apps = {"v1": wsgi_app, "v2": wsgi_app}
    off, on = _router(apps, False), _router(apps, True)
    cases = {
        "bare app": wsgi_app,
        "hand-written": hand_written_wsgi(apps),
        "signals off": off,
        "signals on": on,
    }
    return bench_wsgi(cases, loops, repeats, warm=[off, on])


_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}
_END = {"type": "http.response.body", "body": b"ok"}


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """What every ASGI app does: send the response start, then the whole body."""
    await send(_START)
    await send(_END)


def asgi_request_cost(loops: int, repeats: int) -> dict[str, float]:
    apps = {"v1": asgi_app, "v2": asgi_app}
    off, on = _router(apps, False), _router(apps, True)
    cases = {
        "bare app": asgi_app,
        "hand-written": hand_written_asgi(apps),
        "signals off": off,
        "signals on": on,
    }
    return bench_asgi(cases, loops, repeats, warm=[off, on])


def floor_cost(loops: int, repeats: int) -> dict[str, float]:
    """ns per request of the unavoidable parts of counting, each as a bare wrapper of the app.

    The differences against "bare app" are the floor: a wrapper's call, two clock reads, the
    ``start_response`` interception through the thread's slot, and counting one request into
    its row (a dict look-up and four list increments).
    """
    from time import monotonic

    row: list[Any] = [0] * 30
    rows = {"tenant1": row}

    def passthrough(environ: dict[str, Any], start_response: Any) -> Any:
        return wsgi_app(environ, start_response)

    def clocks(environ: dict[str, Any], start_response: Any) -> Any:
        began = monotonic()
        body = wsgi_app(environ, start_response)
        monotonic() - began
        return body

    def interception(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            slot = THREAD.slot
        except AttributeError:
            slot = thread_slot()
        slot.busy = True
        slot.start_response = start_response
        body = wsgi_app(environ, slot.start)
        slot.busy = False
        return body

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        body = wsgi_app(environ, start_response)
        counts = rows["tenant1"]
        counts[2] += 1
        counts[8] += 0.001
        counts[10] += 1
        if counts[8] > 1e300:
            counts[7] += 1
        return body

    cases = {
        "bare app": wsgi_app,
        "+ a wrapper's call": passthrough,
        "+ two clock reads": clocks,
        "+ status interception": interception,
        "+ counting a row": counting,
    }
    return bench_wsgi(cases, loops, repeats)


def _recorder(sink: SignalSink, tenants: int) -> tuple[Recorder, SignalsWSGI]:
    recorder = Recorder(sink, SignalsConfig(flush_interval=3600, max_rows=tenants), SYSTEM)
    counter = SignalsWSGI(wsgi_app, "v1", recorder, SYSTEM, Tenants())
    now = SYSTEM.monotonic()
    for i in range(tenants):
        counter._record(f"tenant{i}", 2, now, now + 0.01, False, 0.0)
    return recorder, counter


def row_bytes(tenants: int) -> float:
    """Bytes held per counted row (the tenant names excluded: the router holds them anyway)."""
    names = [f"tenant{i}" for i in range(tenants)]
    sink = MemorySink()
    recorder = Recorder(sink, SignalsConfig(flush_interval=3600, max_rows=tenants), SYSTEM)
    counter = SignalsWSGI(wsgi_app, "v1", recorder, SYSTEM, Tenants())
    now = SYSTEM.monotonic()
    counter._record("warm", 2, now, now + 0.01, False, 0.0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for name in names:
        counter._record(name, 2, now, now + 0.01, False, 0.0)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / tenants


def flush_seconds(sink: SignalSink, tenants: int) -> float:
    recorder, _counter = _recorder(sink, tenants)
    start = time.perf_counter()
    written = recorder.flush()
    elapsed = time.perf_counter() - start
    if written != tenants or recorder.status()["unsent_rows"]:
        raise SystemExit(f"flush wrote {written} of {tenants} rows: {recorder.status()}")
    recorder.close()
    return elapsed


def _services() -> list[tuple[str, str]]:
    name = f"cohortroute_bench_{uuid.uuid4().hex[:8]}"
    redis_url = os.environ.get("COHORTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    pg_url = os.environ.get("COHORTROUTE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
    sep = "&" if "?" in pg_url else "?"
    return [("Redis", f"{redis_url}?prefix={name}:"), ("PostgreSQL", f"{pg_url}{sep}schema={name}")]


def _clean(label: str, url: str) -> None:
    name = url.rsplit("=", 1)[1]
    if label == "Redis":
        import redis

        client = redis.Redis.from_url(url.split("?")[0])
        keys = list(client.scan_iter(match=name + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    else:
        import psycopg

        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops, for a smoke run")
    parser.add_argument("--services", action="store_true", help="also flush to Redis, PostgreSQL")
    parser.add_argument("--tenants", type=int, default=100_000, help="active tenants to flush")
    args = parser.parse_args(argv)
    loops, repeats = (5_000, 5) if args.quick else (50_000, 15)

    cost = request_cost(loops, repeats)
    base = cost.pop("build environ")
    net = {k: v - base for k, v in cost.items()}
    print(
        f"WSGI (ns/request, median of {repeats} x {loops}; environ copy {base:.0f} ns netted out)"
    )
    for name, value in net.items():
        print(f"  {name:22s} {value:8.0f}")
    extra = net["signals on"] - net["signals off"]
    ratio = net["signals on"] / net["hand-written"]
    print(f"  signals on - off               = {extra:6.0f} ns  (target <= 500 ns)")
    print(f"  signals on / hand-written      = {ratio:6.2f}x  (target <= 4x)")

    asgi = asgi_request_cost(loops, repeats)
    print(f"ASGI (ns/request, median of {repeats} x {loops})")
    for name, value in asgi.items():
        print(f"  {name:22s} {value:8.0f}")
    print(f"  signals on - off               = {asgi['signals on'] - asgi['signals off']:6.0f} ns")
    print(f"  signals on / hand-written      = {asgi['signals on'] / asgi['hand-written']:6.2f}x")

    parts = floor_cost(loops, repeats)
    bare = parts.pop("bare app")
    del parts["build environ"]
    print("The floor: each part alone, as a wrapper around the bare app (ns/request over it)")
    floor = 0.0
    for name, value in parts.items():
        extra_part = value - bare
        if name != "+ a wrapper's call":
            extra_part -= parts["+ a wrapper's call"] - bare  # each includes a wrapper's call
        floor += extra_part
        print(f"  {name:22s} {extra_part:8.0f}")
    print(f"  sum (any Python counter) = {floor:6.0f} ns; signals on - off = {extra:.0f} ns")

    print(f"Memory per counted row: {row_bytes(50_000):.0f} bytes (tenant name excluded)")

    tenants = args.tenants
    with tempfile.TemporaryDirectory() as directory:
        sink = open_sink(f"sqlite:///{directory}/bench.db")
        print(f"Flush of {tenants} active tenants to SQLite: {flush_seconds(sink, tenants):.2f} s")
    if args.services:
        for label, url in _services():
            try:
                seconds = flush_seconds(open_sink(url), tenants)
                print(f"Flush of {tenants} active tenants to {label}: {seconds:.2f} s")
            finally:
                _clean(label, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

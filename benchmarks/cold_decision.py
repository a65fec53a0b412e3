"""Cold-decision benchmark: a store lookup plus ``decide()`` among 100,000 pinned tenants.

Run: ``python benchmarks/cold_decision.py``. "Cold" means the router's decision cache does not
have the tenant, so each sample reads the store: ``store.tenant(name)`` then
``decide(policy, record, default)`` (the policy is cached per revision, as the router does).
It measures random pinned tenants (a hit) and random unknown tenants (a miss that goes on to
the rollout bucket), and prints the median and p99 in microseconds.

The memory store and a temporary SQLite file are always measured; ``--services`` adds the
Redis and PostgreSQL servers named by ``COHORTROUTE_TEST_REDIS_URL`` /
``COHORTROUTE_TEST_POSTGRES_URL`` (defaults: 127.0.0.1, as in the tests), each in a fresh key
prefix / schema that is deleted afterwards; add any other with ``--store URL`` (repeatable),
each naming an EMPTY store, e.g. ``--store redis://localhost/15``.
The target: a cold SQLite lookup stays well under 1 ms with 100,000 pinned tenants.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cohortroute.decision import decide
from cohortroute.policy import TenantRecord
from cohortroute.store import Mutation, StateReader, Store, open_store

DEFAULT, PINNED, CANDIDATE = "1.0", "2.0", "3.0"


def load(store: Store, names: list[str], batch: int = 10_000) -> None:
    """Pin every tenant to PINNED, a batch per transaction, and start a 10 % rollout."""
    store.register_versions([DEFAULT, PINNED, CANDIDATE], default=DEFAULT, actor="bench")
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]

        def change(state: StateReader, chunk: list[str] = chunk) -> Mutation:
            m = Mutation()
            for name in chunk:
                m.tenants[name] = TenantRecord(name, pin=PINNED)
            m.record("bench-load", None, None, len(chunk))
            return m

        store._commit(change, "bench")
    store.start_rollout(CANDIDATE, 10, salt="bench", actor="bench")


def measure(store: Store, names: list[str], samples: int, rng: random.Random) -> list[float]:
    """Microseconds per cold decision for ``samples`` random names."""
    policy = store.policy()
    for name in names[:200]:  # warm up: open the connection, prepare the statements
        decide(policy, store.tenant(name), DEFAULT)
    timings = []
    clock = time.perf_counter_ns
    for name in rng.choices(names, k=samples):
        started = clock()
        decide(policy, store.tenant(name), DEFAULT)
        timings.append((clock() - started) / 1000)
    return timings


def summary(timings: list[float]) -> str:
    p99 = statistics.quantiles(timings, n=100)[98]
    return f"median {statistics.median(timings):7.1f} us   p99 {p99:7.1f} us"


@contextmanager
def temporary_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cohortroute-bench-") as folder:
        yield f"sqlite:///{os.path.join(folder, 'bench.db')}"


def run(url: str, label: str, pins: int, samples: int) -> None:
    store = open_store(url)
    try:
        if store.revision() != 0:
            raise SystemExit(f"{label}: the store at {url} is not empty; give an empty one")
        names = [f"tenant{i}" for i in range(pins)]
        started = time.perf_counter()
        load(store, names)
        loaded = time.perf_counter() - started
        rng = random.Random(42)
        hits = measure(store, names, samples, rng)
        misses = measure(store, [f"other{i}" for i in range(pins)], samples, rng)
        print(f"{label:<10} {pins:,} pins (loaded in {loaded:.1f} s)")
        print(f"{'':<10} pinned tenant   {summary(hits)}")
        print(f"{'':<10} unknown tenant  {summary(misses)}")
    finally:
        store.close()


@contextmanager
def temporary_redis() -> Iterator[str]:
    """An empty Redis store under a unique key prefix, deleted afterwards."""
    import redis

    base = os.environ.get("COHORTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    prefix = f"cohortroute-bench-{os.getpid()}:"
    try:
        yield f"{base}{'&' if '?' in base else '?'}prefix={prefix}"
    finally:
        client = redis.Redis.from_url(base)
        try:
            for keys in _chunks(client.scan_iter(match=f"{prefix}*", count=1000), 1000):
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """An empty PostgreSQL store in a unique schema, dropped afterwards."""
    import psycopg

    base = os.environ.get("COHORTROUTE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
    schema = f"cohortroute_bench_{os.getpid()}"
    try:
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", default=[], metavar="URL")
    parser.add_argument("--pins", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument(
        "--services", action="store_true", help="also measure the Redis and PostgreSQL servers"
    )
    args = parser.parse_args()
    run("memory://", "memory", args.pins, args.samples)
    with temporary_sqlite() as url:
        run(url, "sqlite", args.pins, args.samples)
    if args.services:
        with temporary_redis() as url:
            run(url, "redis", args.pins, args.samples)
        with temporary_postgres() as url:
            run(url, "postgres", args.pins, args.samples)
    for url in args.store:
        run(url, url.split(":", 1)[0], args.pins, args.samples)


if __name__ == "__main__":
    main()

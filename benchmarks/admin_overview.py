"""The admin console's overview with a big registry: it must render in under a second.

Run: ``python benchmarks/admin_overview.py`` (``--tenants N``, default 1,000,000; ``--db PATH``
to keep and reuse the SQLite file). Registers the tenants in a SQLite store, starts a rollout,
then times, in-process through ``werkzeug.test.Client``:

* the first overview (no tally yet: it must not count, the background thread does);
* how long the background tally takes (one pass over the registry, off the request path);
* the overview with the tally (median and worst of 20), and ``/api/overview`` (the live poll);
* the first page of the tenants search, with a prefix near the start and the end of the names.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from werkzeug.test import Client

from cohortroute import AdminApp, open_store


def timed(fn: Callable[[], object], repeat: int = 1) -> list[float]:
    """Seconds per call of ``fn``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="SQLite file (kept; reused when it exists)")
    args = parser.parse_args()
    path = args.db or os.path.join(tempfile.mkdtemp(), "admin-bench.db")
    store = open_store(f"sqlite:///{path}")
    if store.policy().default is None:
        store.register_versions(["v1", "v2"], "v1")
        start = time.perf_counter()
        store.register_tenants(f"tenant{i:07d}" for i in range(args.tenants))
        print(f"registered {args.tenants:,} tenants in {time.perf_counter() - start:.1f} s")
        store.start_rollout("v2", 10, plan=[10, 50, 100])
    app = AdminApp(store, anonymous="read-only", count_every=0)
    client = Client(app)

    def get(path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, response.status_code

    first = timed(lambda: get("/"))[0]
    print(f"overview, first view (tally not ready): {first * 1000:.0f} ms")
    start = time.perf_counter()
    tally = app.counts.wait()
    assert tally is not None
    print(
        f"background tally of {tally.registered:,} tenants: {time.perf_counter() - start:.1f} s "
        f"{dict(sorted(tally.versions.items()))}"
    )
    views = timed(lambda: get("/"), 20)
    print(
        f"overview with the tally: median {statistics.median(views) * 1000:.1f} ms, "
        f"worst {max(views) * 1000:.1f} ms"
    )
    polls = timed(lambda: get("/api/overview"), 20)
    print(f"/api/overview: median {statistics.median(polls) * 1000:.1f} ms")
    near = timed(lambda: get("/tenants?prefix=tenant00001"))[0]
    far = timed(lambda: get(f"/tenants?prefix=tenant{args.tenants - 100:07d}"))[0]
    print(f"tenants search, prefix near the start: {near * 1000:.0f} ms, near the end: {far:.2f} s")
    assert max(views) < 1.0 and first < 1.0, "the overview must render in under 1 s"


if __name__ == "__main__":
    main()

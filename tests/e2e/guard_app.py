"""The app 2 gunicorn workers serve in tests/e2e/test_guard_fleet.py: ``tests.e2e.guard_app:app``.

Two versions behind a router with signals on. ``v2`` (the candidate) answers 500 to one request
in five, counted per worker and tenant, for the tenants listed in ``GUARD_FAILING``; everything
else answers 200. Every answer says ``<version> <tenant> <pid>``. Built in each worker (no
``--preload``): the signals are flushed every ``GUARD_FLUSH_INTERVAL`` seconds and when the
worker exits.

Environment:

``COHORTROUTE_STORE``
    the store URL (required).
``GUARD_FAILING``
    comma-separated tenants the candidate fails for.
``GUARD_FLUSH_INTERVAL``
    seconds between two flushes of the signals (default 0.5).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import Any

from cohortroute import CohortRouter
from cohortroute.signals import SignalsConfig
from cohortroute.store import open_store

STORE = os.environ["COHORTROUTE_STORE"]
FAILING = frozenset(t for t in os.environ.get("GUARD_FAILING", "").split(",") if t)
FLUSH_INTERVAL = float(os.environ.get("GUARD_FLUSH_INTERVAL", "0.5"))

_counters: dict[str, Iterator[int]] = {}


def version(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        tenant = environ["cohortroute.decision"].tenant or ""
        fails = name == "v2" and tenant in FAILING
        if fails and next(_counters.setdefault(tenant, itertools.count())) % 5 == 0:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"{name} {tenant} {os.getpid()}".encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {tenant} {os.getpid()}".encode()]

    return app


app = CohortRouter(
    {"v1": version("v1"), "v2": version("v2")},
    domains=["example.com"],
    store=open_store(STORE),
    signals=SignalsConfig(flush_interval=FLUSH_INTERVAL),
)

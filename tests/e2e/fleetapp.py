"""The app 3 gunicorn workers serve in tests/e2e/test_fleet.py: ``tests.e2e.fleetapp:app``.

Built at import, so under ``gunicorn --preload`` the router, its store and its listener are
made in the master and inherited by every worker through fork -- which is what the fleet test
proves safe. Each answer says ``<version> <reason> <pid> <listeners>``: which version served,
why, which worker process answered, and how many store listener threads that process runs.

Environment:

``COHORTROUTE_STORE``
    the store URL (required).
``FLEET_REFRESH_INTERVAL``
    the router's refresh interval in seconds (default 1).
``FLEET_PUSH``
    ``0`` turns pushes off with the store URL option ``push=false`` (no listener thread, no
    ``SUBSCRIBE``/``LISTEN``). Only the periodic revision check can then deliver a change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from cohortroute import CohortRouter
from cohortroute.store import open_store

STORE = os.environ["COHORTROUTE_STORE"]
REFRESH_INTERVAL = float(os.environ.get("FLEET_REFRESH_INTERVAL", "1"))
PUSH = os.environ.get("FLEET_PUSH", "1") != "0"


def listeners() -> int:
    """The store listener threads running in this process."""
    names = ("cohortroute-redis-listener", "cohortroute-postgres-listener")
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(names))


def version(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        decision = environ["cohortroute.decision"]
        body = f"{name} {decision.reason} {os.getpid()} {listeners()}"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return app


store = open_store(STORE if PUSH else f"{STORE}{'&' if '?' in STORE else '?'}push=false")

app = CohortRouter(
    {"v1": version("v1"), "v2": version("v2")},
    domains=["example.com"],
    store=store,
    refresh_interval=REFRESH_INTERVAL,
)

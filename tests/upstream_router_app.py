"""The router tests/test_upstream_servers.py serves with real uvicorn and hypercorn (asyncio and
trio workers): every version an ``Upstream`` (``v2`` at ``$UPSTREAM_URL``), acme pinned to v2."""

from __future__ import annotations

import os

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream

app = CohortRouter(
    apps={"v1": Upstream("http://127.0.0.1:9"), "v2": Upstream(os.environ["UPSTREAM_URL"])},
    domains=["example.com"],
    register_tenants=False,
    interface="asgi",
)
app.store.pin("acme", "v2")

"""Routers that the end-to-end tests serve with real gunicorn and uvicorn.

The store URL comes from ``COHORTROUTE_STORE`` (default: an in-memory store seeded here).
"""

from __future__ import annotations

import os

from cohortroute import CohortRouter
from tests.apps import asgi_version, wsgi_version

STORE = os.environ.get("COHORTROUTE_STORE", "memory://")

wsgi = CohortRouter(
    {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
    domains=["example.com"],
    store=STORE,
    refresh_interval=0.2,
)
asgi = CohortRouter(
    {"v1": asgi_version("v1"), "v2": wsgi_version("v2"), "v3": asgi_version("v3")},
    domains=["example.com"],
    store=STORE,
    refresh_interval=0.2,
)
if STORE == "memory://":
    wsgi.store.pin("acme", "v2")
    asgi.store.pin("acme", "v2")
    asgi.store.pin("globex", "v3")

"""An assignment backend reading the app's own database: tenants on a paid plan get the preview.

The app keeps its accounts in SQLite (``accounts(subdomain, plan)``); the backend asks it on a
cache miss, read-only, and lets the router cache the answer for ``ttl`` seconds (call
``router.invalidate(tenant)`` when a customer changes plan to apply it at once)::

    router = CohortRouter(apps, domains=["example.com"], store=URL,
                          assign=[PlanTier("app.db", version="2026.12")])
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from cohortroute import Assignment, Query


@dataclass(frozen=True)
class PlanTier:
    """Tenants whose account's plan is one of ``plans`` get ``version``; others no opinion."""

    database: str
    version: str
    plans: Collection[str] = ("paid",)
    name: str = "plan-tier"
    ttl: float | None = 60.0
    timeout: float | None = None  # a local SQLite file answers in microseconds

    def assign(self, query: Query, /) -> Assignment | None:
        # One connection per call: SQLite connections belong to one thread, and this runs
        # only on a cache miss.
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT plan FROM accounts WHERE subdomain = ?", (query.tenant,)
            ).fetchone()
        if row is None or row[0] not in self.plans:
            return None
        return Assignment(self.version, "plan", f"{row[0]} plan in the accounts table")

"""An assignment backend asking a remote flag service, with a timeout.

``GET {base}/cohort/{tenant}`` answers ``{"version": "2026.12"}`` to assign a version, or 404
(or ``{"version": null}``) for no opinion. The backend declares ``timeout``: past it the router
goes on without the service's opinion (counted in ``router.status()["assign_errors"]``), so a
slow or dead flag service never fails a request; its answers are cached ``ttl`` seconds::

    router = CohortRouter(apps, domains=["example.com"], store=URL,
                          assign=[FlagService("http://flags.internal:8080")])
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from cohortroute import Assignment, Query


@dataclass(frozen=True)
class FlagService:
    """Versions assigned by a remote HTTP flag service."""

    base: str
    name: str = "flags"
    ttl: float | None = 30.0
    timeout: float | None = 0.2

    def assign(self, query: Query, /) -> Assignment | None:
        url = f"{self.base.rstrip('/')}/cohort/{urllib.parse.quote(query.tenant)}"
        try:
            # The socket timeout stops the thread too; the router stops waiting at `timeout`.
            with urllib.request.urlopen(url, timeout=self.timeout or 1.0) as response:
                data = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None  # the service has no opinion on this tenant
            raise
        version = data.get("version") if isinstance(data, dict) else None
        if version is None:
            return None
        return Assignment(str(version), "flag", f"flag service at {self.base}")

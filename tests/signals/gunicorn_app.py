"""The router the gunicorn end-to-end signal test serves: signals on, over COHORTROUTE_STORE.

``v1`` answers 200; ``v2`` answers 500 for tenant ``broken`` and raises for ``crashing``,
else 201. The store (seeded by the test) pins those tenants to ``v2``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cohortroute import CohortRouter, SignalsConfig


def v1(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"v1"]


def v2(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    tenant = environ["cohortroute.tenant"]
    if tenant == "crashing":
        raise RuntimeError("v2 cannot serve this tenant")
    start_response("500 Internal Server Error" if tenant == "broken" else "201 Created", [])
    return [b"v2"]


app = CohortRouter(
    {"v1": v1, "v2": v2},
    domains=["example.com"],
    store=os.environ["COHORTROUTE_STORE"],
    signals=SignalsConfig(flush_interval=3600),  # so only the flush at exit writes
    register_tenants=False,
)

"""``cohortroute demo``: two versions of a small app behind a router, to try cohortroute locally.

The demo serves ``2026.11`` (stable) and ``2026.12`` (new) under the domain ``localhost``:
browsers resolve ``acme.localhost`` to this machine, so ``http://acme.localhost:8000/`` is tenant
``acme``. Every page says which version served it, the tenant, and why. The apex
``http://localhost:8000/`` lists the tenants.

:mod:`~cohortroute.demo.seed` holds the cast and the seed, :mod:`~cohortroute.demo.pages` the
two version apps, :mod:`~cohortroute.demo.server` the router, socket and banner. The demo never
imports the CLI; both explain decisions through :mod:`cohortroute.explain`.
"""

from __future__ import annotations

from ..errors import ListenError
from .pages import Site, VersionApp
from .seed import (
    ACTOR,
    BETA_TAG,
    DEFAULT_STORE,
    DOMAIN,
    LOOKS,
    NEW,
    QA_TENANT,
    ROLLOUT_SALT,
    SEED_TENANTS,
    STABLE,
    Look,
    rollout_candidates,
    rollout_percent,
    seed,
)
from .server import REFRESH_INTERVAL, build_demo, cli_command, cli_store_url, listen, run_demo

__all__ = [
    "ACTOR",
    "BETA_TAG",
    "DEFAULT_STORE",
    "DOMAIN",
    "LOOKS",
    "NEW",
    "QA_TENANT",
    "REFRESH_INTERVAL",
    "ROLLOUT_SALT",
    "SEED_TENANTS",
    "STABLE",
    "ListenError",
    "Look",
    "Site",
    "VersionApp",
    "build_demo",
    "cli_command",
    "cli_store_url",
    "listen",
    "rollout_candidates",
    "rollout_percent",
    "run_demo",
    "seed",
]

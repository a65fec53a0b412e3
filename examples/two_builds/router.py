"""The router in front of two builds of the shop, each served by its own gunicorn.

Neither build is imported here: each version is an ``Upstream``, the address of the server
running that build (in its own virtualenv). Configure it with environment variables:

``SHOP_2026_11`` / ``SHOP_2026_12``
    where each build listens, e.g. ``unix:/run/shop-2026.11.sock`` or ``http://127.0.0.1:8001``.
``COHORTROUTE_STORE``
    the routing state, e.g. ``sqlite:////var/lib/shop/routing.db``.
``SHOP_DOMAIN``
    the domain tenants are subdomains of (``shop.test`` by default).

Run it with ``gunicorn --chdir examples/two_builds router:app``.
"""

from __future__ import annotations

import os

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream

app = CohortRouter(
    apps={
        "2026.11": Upstream(os.environ["SHOP_2026_11"]),
        "2026.12": Upstream(os.environ["SHOP_2026_12"]),
    },
    default="2026.11",
    domains=[os.environ.get("SHOP_DOMAIN", "shop.test")],
    extra_hosts=["localhost"],
    store=os.environ.get("COHORTROUTE_STORE", "sqlite:///routing.db"),
)

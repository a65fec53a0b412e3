"""Create tenants' databases at 2026.11's schema, with one note each (a new tenant's sign-up).

It also opens the router once, which creates the store ($COHORTROUTE_STORE) and records the
versions it mounts, so that the CLI (which never creates a store) can start the rollout next::

    export SHOP_DATA=shop-data COHORTROUTE_STORE=sqlite:///cohortroute.db
    python -m examples.cookbook_django.setup_tenants acme globex
"""

from __future__ import annotations

import sys

from django.db import connections

from . import migrations_plan, tenants  # migrations_plan configures Django


def create(tenant: str) -> None:
    """Give ``tenant`` a database migrated to 0001 and a first note."""
    tenants.migrate(tenant, "0001")
    # 2026.11's schema has no body column, which the current model has: plain SQL.
    with connections[tenants.database(tenant)].cursor() as cursor:
        cursor.execute("INSERT INTO shop_note (title) VALUES (%s)", [f"welcome {tenant}"])


def open_router_once() -> None:
    """Start and close the router: a new store is created and learns the mounted versions."""
    from .wsgi import app

    app.close()


if __name__ == "__main__":
    assert migrations_plan.migrations is not None
    for name in sys.argv[1:]:
        create(name)
    open_router_once()

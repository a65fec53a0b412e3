"""Per-tenant data migrations for cohortroute, run with Django's own migration framework.

2026.11 needs the shop's migration 0001, 2026.12 needs 0002. The rollout runner calls these
steps one tenant at a time, on that tenant's database only::

    cohortroute rollout start 2026.12 --percent 50
    cohortroute rollout run --once --app examples.cookbook_django.migrations_plan:migrations
"""

from __future__ import annotations

import os

import django

from cohortroute import Migrations

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.cookbook_django.settings")
django.setup()

from . import tenants  # noqa: E402 - needs the settings configured above

migrations = Migrations(retry_after=5, discover=tenants.tenants_with_data)
migrations.version("2026.11", shop=1)
migrations.version("2026.12", shop=2)


@migrations.upgrade(1, module="shop")
def create_tables(tenant: str) -> None:
    tenants.migrate(tenant, "0001")


@migrations.upgrade(2, module="shop")
def add_body(tenant: str) -> None:
    tenants.migrate(tenant, "0002")


@migrations.downgrade(2, module="shop")
def drop_body(tenant: str) -> None:
    tenants.migrate(tenant, "0001")

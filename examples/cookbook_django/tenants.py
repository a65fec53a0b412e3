"""One database per tenant: opened on demand, chosen per request, migrated per tenant.

The router's decision (``environ["cohortroute.decision"]``) names the tenant and the version;
:class:`TenantMiddleware` makes the tenant's database the one the ORM uses for the request and
the version's URLconf the one Django resolves with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.http import HttpRequest, HttpResponse

_current = threading.local()


def database(tenant: str) -> str:
    """The connection alias of ``tenant``'s database, added to Django's connections if new."""
    alias = f"tenant_{tenant}"
    if alias not in connections.settings:
        data = Path(settings.DATA)
        data.mkdir(parents=True, exist_ok=True)
        own = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(data / f"{tenant}.sqlite3")}
        # configure_settings fills in Django's defaults; it insists on seeing a default too.
        configured = connections.configure_settings(
            {"default": dict(settings.DATABASES["default"]), alias: own}
        )
        connections.settings[alias] = configured[alias]
    return alias


def migrate(tenant: str, target: str) -> None:
    """Bring ``tenant``'s database to the shop's migration ``target`` (forwards or backwards)."""
    call_command("migrate", "shop", target, database=database(tenant), verbosity=0)


def tenants_with_data() -> list[str]:
    """Every tenant that has a database file."""
    return sorted(path.stem for path in Path(settings.DATA).glob("*.sqlite3"))


class TenantDatabaseRouter:
    """Django's database router: the shop's models live in the current tenant's database."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return getattr(_current, "alias", None)

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db != "default" or app_label != "shop"


class TenantMiddleware:
    """Select the tenant's database and the version's URLconf for one request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        decision = request.META["cohortroute.decision"]
        request.urlconf = settings.VERSIONS[decision.version]["URLCONF"]
        _current.alias = database(decision.tenant) if decision.tenant else None
        try:
            return self.get_response(request)
        finally:
            _current.alias = None

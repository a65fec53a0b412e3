"""The router: one Django project mounted as two versions, one URLconf and settings set each.

Serve it with gunicorn::

    export SHOP_DATA=shop-data COHORTROUTE_STORE=sqlite:///cohortroute.db
    gunicorn examples.cookbook_django.wsgi:app
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from cohortroute import CohortRouter

from .migrations_plan import migrations

django_app = get_wsgi_application()

app = CohortRouter(
    # Django's settings are per process, so both versions are the same project: the router's
    # decision picks the version's URLconf and settings (tenants.TenantMiddleware).
    apps={"2026.11": django_app, "2026.12": django_app},
    default="2026.11",
    domains=["example.com", "localhost"],
    store=os.environ.get("COHORTROUTE_STORE", "sqlite:///cohortroute.db"),
    migrations=migrations,
)

"""Django settings shared by both versions; what differs per version is in ``VERSIONS``.

Each tenant has its own SQLite database (``$SHOP_DATA/<tenant>.sqlite3``), opened on demand by
:mod:`examples.cookbook_django.tenants`; ``default`` holds nothing of the shop's.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("SHOP_DATA", "shop-data"))
SECRET_KEY = "cookbook-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]  # the router already refused every Host outside its domains
INSTALLED_APPS = ["django.contrib.contenttypes", "examples.cookbook_django.shop"]
MIDDLEWARE = ["examples.cookbook_django.tenants.TenantMiddleware"]
ROOT_URLCONF = "examples.cookbook_django.urls_2026_11"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DATABASE_ROUTERS = ["examples.cookbook_django.tenants.TenantDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

# The two versions' own settings: the URLconf each serves, and what its views may show.
VERSIONS = {
    "2026.11": {"URLCONF": "examples.cookbook_django.urls_2026_11", "SHOW_BODY": False},
    "2026.12": {"URLCONF": "examples.cookbook_django.urls_2026_12", "SHOW_BODY": True},
}

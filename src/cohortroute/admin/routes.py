"""Which handler answers which method and path (``*`` matches one path segment)."""

from __future__ import annotations

import logging
from typing import Any

from . import audit_page, overview, rollout_pages, signals_page, tenant_pages

log = logging.getLogger(__name__)

_TENANT_ACTIONS = ("pin", "unpin", "tag", "untag", "rollback")

ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/"): overview.overview,
    ("GET", "/api/overview"): overview.api_overview,
    ("GET", "/rollout"): rollout_pages.rollout_page,
    ("GET", "/rollout/confirm"): rollout_pages.confirm,
    ("POST", "/rollout/*"): rollout_pages.do_action,
    ("GET", "/tenants"): tenant_pages.tenants,
    ("GET", "/tenants/*"): tenant_pages.tenant,
    ("GET", "/tenants/*/rollback-confirm"): tenant_pages.rollback_confirm,
    ("POST", "/tenants/*/*"): tenant_pages.change,
    ("GET", "/signals"): signals_page.signals,
    ("GET", "/audit"): audit_page.audit,
}

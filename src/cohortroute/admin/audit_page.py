"""The audit log page, filterable by tenant, actor and action."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from werkzeug.wrappers import Response

from ..policy import AuditEntry
from .app import Ctx
from .html import Html, button, field, form, link, table, when

log = logging.getLogger(__name__)

LIMIT = 200
"""How many entries the page reads from the store."""


def audit_table(ctx: Ctx, entries: Iterable[AuditEntry], caption: str) -> Html:
    """Audit entries as a table, tenants linked to their pages."""
    rows = [
        (
            e.revision,
            when(e.at),
            e.actor,
            e.action,
            link(f"{ctx.base}/tenants/{e.tenant}", e.tenant) if e.tenant else "-",
            _short(e.before),
            _short(e.after),
        )
        for e in entries
    ]
    return table(
        caption, ["Revision", "When", "Actor", "Action", "Tenant", "Before", "After"], rows
    )


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def audit(ctx: Ctx) -> Response:
    """``GET /audit?tenant=&actor=&action=``."""
    args = ctx.request.args
    tenant = args.get("tenant", "").strip() or None
    actor = args.get("actor", "").strip()
    action = args.get("action", "").strip()
    entries = [
        e
        for e in ctx.store.history(tenant, LIMIT)
        if (not actor or e.actor == actor) and (not action or e.action.startswith(action))
    ]
    filters = form(
        ctx.base + "/audit",
        field("tenant", "Tenant", tenant or "")
        + " "
        + field("actor", "Actor", actor)
        + " "
        + field("action", "Action starts with", action)
        + " "
        + button("Filter"),
        None,
        method="get",
    )
    return ctx.render("Audit log", Html(filters + audit_table(ctx, entries, "Newest first")))

"""The tenants pages: search by prefix a page at a time, one tenant's decision and history,
and pin / unpin / tag / untag / roll back."""

from __future__ import annotations

import logging

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from ..errors import CohortRouteError
from ..policy import check_tenant_name
from .app import Ctx
from .audit_page import audit_table
from .html import Html, button, definitions, field, form, hidden, join, link, select, tag, url
from .rollout_pages import result_page

log = logging.getLogger(__name__)

PAGE = 50
"""Tenants per page of the search."""


def tenants(ctx: Ctx) -> Response:
    """``GET /tenants?prefix=&after=``: one page of names (an index range on SQLite)."""
    prefix = ctx.request.args.get("prefix", "").strip().lower()
    after = ctx.request.args.get("after", "")
    found = ctx.store.tenant_names(prefix, after=after, limit=PAGE + 1)
    search = form(
        ctx.base + "/tenants",
        field("prefix", "Tenant name starts with", prefix, kind="search") + " " + button("Search"),
        None,
        method="get",
        role="search",
    )
    rows = join(tag("li", link(f"{ctx.base}/tenants/{name}", name)) for name in found[:PAGE])
    listing = Html(f"<ul>{rows}</ul>") if found else tag("p", "No tenant matches.")
    more = (
        tag("p", link(url(ctx.base, "/tenants", prefix=prefix, after=found[PAGE - 1]), "Next page"))
        if len(found) > PAGE
        else Html("")
    )
    return ctx.render("Tenants", Html(search + listing + more))


def tenant(ctx: Ctx, name: str) -> Response:
    """``GET /tenants/<name>``: the decision and why, the record, the forms, the history."""
    try:
        name = check_tenant_name(name)
        decision = ctx.controller().explain(name)
    except CohortRouteError as exc:
        return ctx.render("Tenant", tag("p", str(exc), role="alert"), status=404)
    record = ctx.store.tenant(name)
    policy = ctx.store.policy()
    facts = definitions(
        {
            "Served": decision.version,
            "Why": f"{decision.reason}: {decision.detail}" if decision.detail else decision.reason,
            "Pinned to": record.pin or "-",
            "Tags": ", ".join(sorted(record.tags)) or "-",
            "Registered": "yes" if record.registered else "no",
            "Data at version": record.data_version or "-",
        }
    )
    base = f"{ctx.base}/tenants/{name}"
    pin = form(
        base + "/pin",
        select("version", "Pin to version", sorted(policy.versions)) + " " + button("Pin"),
        ctx.csrf,
    )
    unpin = form(base + "/unpin", button("Unpin"), ctx.csrf) if record.pin else Html("")
    tag_form = form(base + "/tag", field("tag", "Add tag", "") + " " + button("Tag"), ctx.csrf)
    untags = join(
        form(base + "/untag", hidden("tag", t) + button(f"Remove tag {t}"), ctx.csrf)
        for t in sorted(record.tags)
    )
    rollback = (
        form(base + "/rollback-confirm", button("Roll back this tenant"), None, method="get")
        if policy.rollout is not None
        else Html("")
    )
    history = audit_table(ctx, ctx.store.history(name, 50), f"History of {name}")
    body = Html(
        facts
        + tag("h2", "Change")
        + Html(f'<div class="actions">{pin}{unpin}{tag_form}{untags}{rollback}</div>')
        + tag("h2", "History")
        + history
    )
    return ctx.render(f"Tenant {name}", body)


def rollback_confirm(ctx: Ctx, name: str) -> Response:
    """``GET /tenants/<name>/rollback-confirm``."""
    policy = ctx.store.policy()
    text = (
        f"{name} goes back to {policy.default} and stays there for the rest of this rollout; "
        "its data is moved back first if it was migrated."
    )
    body = form(
        f"{ctx.base}/tenants/{name}/rollback",
        tag("p", text) + button(f"Confirm rollback of {name}", class_="danger"),
        ctx.csrf,
    )
    return ctx.render(
        f"Confirm: roll back {name}",
        Html(body + tag("p", link(f"{ctx.base}/tenants/{name}", "Cancel"))),
    )


def change(ctx: Ctx, name: str, action: str) -> Response:
    """``POST /tenants/<name>/<action>`` for pin, unpin, tag, untag and rollback."""
    actor = ctx.principal.actor
    back = f"{ctx.base}/tenants/{name}"
    data = ctx.request.form
    store = ctx.store
    work = {
        "pin": lambda: store.pin(name, data.get("version", ""), actor=actor),
        "unpin": lambda: store.unpin(name, actor=actor),
        "tag": lambda: store.tag(name, data.get("tag", ""), actor=actor),
        "untag": lambda: store.untag(name, data.get("tag", ""), actor=actor),
        "rollback": lambda: ctx.controller().rollback(name),
    }.get(action)
    if work is None:
        raise NotFound("Unknown tenant action.")
    return result_page(ctx, f"{action.capitalize()} {name}", work, back)

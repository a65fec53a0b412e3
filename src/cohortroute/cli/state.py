"""The read commands: ``status``, ``explain TENANT`` and ``history [TENANT]``.

They change nothing. ``status`` and ``explain`` decide as every router does
(:mod:`cohortroute.explain`), over the store's policy read fresh; with ``--assign`` they ask the
routers' custom assignment backends too, so their answer is the routers' own.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from .. import explain as explaining
from ..policy import check_tenant_name
from . import render, shapes, visitors
from .context import EXIT_OK, Context
from .loader import load_assign
from .options import Subparsers, add_assign_option, add_command, add_json, positive_int

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

_AFTER_DETAIL = [key for key, _ in shapes.EXPLAIN.keys].index("detail") + 1
EXPLAIN = shapes.JsonShape(
    shapes.EXPLAIN.summary,
    (
        *shapes.EXPLAIN.keys[:_AFTER_DETAIL],
        (
            "backend",
            "the assignment backend that decided: `pin`, `tag`, `rollout`, `default`, a custom "
            "backend's name (with `--assign`) or `override`",
        ),
        ("errors", 'the backends that failed and were skipped, each `"name: what went wrong"`'),
        *shapes.EXPLAIN.keys[_AFTER_DETAIL:],
    ),
)
"""``explain --json``: :data:`shapes.EXPLAIN` with the decision's ``backend`` and ``errors``."""


def register(commands: Subparsers) -> None:
    """Add ``status``, ``explain`` and ``history``."""
    p = add_command(
        commands, "status", cmd_status, "versions, default, rules, rollout and tenant counts"
    )
    add_assign_option(p)
    add_json(p, shapes.STATUS)

    p = add_command(
        commands,
        "explain",
        cmd_explain,
        "which version a tenant gets, why, and what would change it",
    )
    p.add_argument("tenant", metavar="TENANT", help="the tenant, e.g. acme for acme.example.com")
    add_assign_option(p)
    add_json(p, EXPLAIN)

    p = add_command(commands, "history", cmd_history, "the audit log, newest first")
    p.add_argument("tenant", metavar="TENANT", nargs="?", help="only this tenant's entries")
    p.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="entries (default 20)"
    )
    add_json(p, shapes.HISTORY)


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    """Versions, default, tag rules, the rollout, and how many stored tenants are on what."""
    chain = load_assign(args.assign)  # a bad --assign: a usage error before the store
    store = ctx.store
    policy = store.policy()
    now = ctx.clock.time()
    tally = explaining.tally(policy, store.tenants(), now, chain)
    if args.json:
        ctx.emit_json(render.status_json(ctx.shown_store, policy, tally, now))
    else:
        rollout = explaining.current_rollout(policy.rollout, now)
        ctx.print(*render.status_text(ctx.shown_store, policy, tally, rollout))
        if policy.visitors:
            ctx.print(visitors.describe(policy.visitors))
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, ctx: Context) -> int:
    """Which version a tenant gets, why, and what would change it -- what a router decides."""
    name = check_tenant_name(args.tenant)
    store = ctx.store
    chain = load_assign(args.assign)
    explained = explaining.explain(
        store.policy(), store.tenant(name), now=ctx.clock.time(), command=ctx.command(), chain=chain
    )
    if args.json:
        ctx.emit_json(render.explain_json(explained))
    else:
        ctx.print(*render.explain_text(explained))
    return EXIT_OK


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    """The audit log, newest first: who changed what, when, from what to what."""
    tenant = None if args.tenant is None else check_tenant_name(args.tenant)
    entries = ctx.store.history(tenant, limit=args.limit)
    if args.json:
        ctx.emit_json({"entries": [render.audit_json(entry) for entry in entries]})
    elif not entries:
        ctx.print("no changes recorded" + (f" for {tenant}" if tenant else ""))
    else:
        ctx.print(*render.history_table(entries))
    return EXIT_OK

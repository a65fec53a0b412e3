"""The ``versions`` group: list the versions the store knows, retire and unretire them.

The verbs of :meth:`Store.versions <cohortroute.store.base.Store.versions>`,
:meth:`Store.retire <cohortroute.store.base.Store.retire>` and :meth:`Store.unretire
<cohortroute.store.base.Store.unretire>` (see :mod:`cohortroute.versions`).
"""

from __future__ import annotations

import argparse
import logging

from . import render, shapes
from .context import EXIT_OK, Context
from .options import Subparsers, add_command, add_json

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    """Add the ``versions`` group: ``list`` (also ``versions`` alone), ``retire``, ``unretire``."""
    p = add_command(
        commands,
        "versions",
        cmd_versions_list,
        "the versions the store knows: where and when each was last mounted; retire old ones",
        description=(
            "List the versions the store knows, with where and when a router last mounted each "
            "and what still names it (`versions` alone is `versions list`); retire versions "
            "nobody serves any more, so pins, rules and rollouts cannot name them."
        ),
    )
    add_json(p, shapes.VERSIONS)
    actions = p.add_subparsers(dest="versions_action", metavar="ACTION", required=False)
    q = add_command(actions, "list", cmd_versions_list, "list the versions (the default action)")
    add_json(q, shapes.VERSIONS)
    q = add_command(
        actions,
        "retire",
        cmd_versions_retire,
        "retire VERSION: refused while it is the default, the candidate, in a rule or pinned",
    )
    q.add_argument("version", metavar="VERSION", help="the version to retire")
    q = add_command(
        actions, "unretire", cmd_versions_unretire, "put a retired VERSION back in service"
    )
    q.add_argument("version", metavar="VERSION", help="the retired version")


def cmd_versions_list(args: argparse.Namespace, ctx: Context) -> int:
    """Every known version: default, retired, last mount, and what names it."""
    policy_default = ctx.store.policy().default
    listed = ctx.store.versions()
    if args.json:
        ctx.emit_json({"default": policy_default, "versions": [info.to_json() for info in listed]})
    elif not listed:
        ctx.print("no versions yet -- a router records the versions it mounts when it starts")
    else:
        ctx.print(*render.versions_table(listed))
    return EXIT_OK


def cmd_versions_retire(args: argparse.Namespace, ctx: Context) -> int:
    """Retire a version: pins, rules and rollouts naming it are refused from then on."""
    before = ctx.store.revision()
    after = ctx.store.retire(args.version, actor=ctx.actor)
    return ctx.changed(
        before,
        after,
        f"retired {args.version}: pins, rules and rollouts can no longer name it "
        f"(`{ctx.command()} versions unretire {args.version}` undoes it)",
        f"{args.version} is already retired",
    )


def cmd_versions_unretire(args: argparse.Namespace, ctx: Context) -> int:
    """Put a retired version back in service."""
    before = ctx.store.revision()
    after = ctx.store.unretire(args.version, actor=ctx.actor)
    return ctx.changed(
        before, after, f"{args.version} is in service again", f"{args.version} is not retired"
    )

"""The commands that change tenants: ``pin``, ``unpin``, ``tag``, ``untag``, ``rule``, and the
``tenants`` group (``import``, ``add``) that fills the registry rollouts work on."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable

from ..policy import check_tag_name, check_tenant_name
from ..rollout.imports import import_tenants
from ..rollout.tenants import decode_lines
from . import render
from .context import EXIT_OK, Context, UsageError
from .loader import controller_for
from .options import Subparsers, add_command, add_group, positive_int

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    """Add ``pin``, ``unpin``, ``tag``, ``untag``, ``rule`` and the ``tenants`` group."""
    p = add_command(commands, "pin", cmd_pin, "pin a tenant to a version (beats rules/rollout)")
    p.add_argument("tenant", metavar="TENANT", help="the tenant (its subdomain label)")
    p.add_argument("version", metavar="VERSION", help="the version to serve it")

    p = add_command(commands, "unpin", cmd_unpin, "remove a tenant's pin")
    p.add_argument("tenant", metavar="TENANT", help="the tenant (its subdomain label)")

    p = add_command(commands, "tag", cmd_tag, "add a tag (beta, internal...) to a tenant")
    p.add_argument("tenant", metavar="TENANT", help="the tenant (its subdomain label)")
    p.add_argument("tag", metavar="TAG", help="a tag, e.g. beta")

    p = add_command(commands, "untag", cmd_untag, "remove a tag from a tenant")
    p.add_argument("tenant", metavar="TENANT", help="the tenant (its subdomain label)")
    p.add_argument("tag", metavar="TAG", help="a tag, e.g. beta")

    p = add_command(
        commands,
        "rule",
        cmd_rule,
        "serve tenants with a tag a version: rule TAG VERSION, or rule --remove TAG",
    )
    p.add_argument("tag", metavar="TAG", help="a tag, e.g. beta")
    p.add_argument("version", metavar="VERSION", nargs="?", help="the version tenants with TAG get")
    p.add_argument("--remove", action="store_true", help="remove the rule for TAG")

    actions = add_group(
        commands,
        "tenants",
        "import or add tenants to the registry",
        "The tenant registry: routers record the tenants they serve; import or add the others.",
    )
    p = add_command(
        actions,
        "import",
        cmd_tenants_import,
        "import tenants: one per line, or CSV name,tag,tag... (- reads stdin)",
    )
    p.add_argument("file", metavar="FILE", help="the file to read, or - for stdin")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=50_000,
        metavar="N",
        help="tenants per transaction (default 50000)",
    )
    p.add_argument(
        "--replace-tags",
        action="store_true",
        help="make each listed tenant's tags exactly the file's (a tenant listed without tags "
        "loses its tags); without it, tags are only added",
    )
    p = add_command(actions, "add", cmd_tenants_add, "add one tenant (with tags)")
    p.add_argument("tenant", metavar="TENANT", help="the tenant (its subdomain label)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="repeatable")


def cmd_pin(args: argparse.Namespace, ctx: Context) -> int:
    """Pin a tenant to a version: it gets that version whatever the rules and rollout say."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    after = ctx.store.pin(name, args.version, actor=ctx.actor)
    return ctx.changed(
        before, after, f"pinned {name} to {args.version}", f"{name} is already pinned there"
    )


def cmd_unpin(args: argparse.Namespace, ctx: Context) -> int:
    """Remove a tenant's pin; the tag rules and the rollout decide again."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    after = ctx.store.unpin(name, actor=ctx.actor)
    return ctx.changed(before, after, f"unpinned {name}", f"{name} is not pinned")


def cmd_tag(args: argparse.Namespace, ctx: Context) -> int:
    """Add a tag to a tenant (a tag rule for it then applies)."""
    name, tag = check_tenant_name(args.tenant), check_tag_name(args.tag)
    before = ctx.store.revision()
    after = ctx.store.tag(name, tag, actor=ctx.actor)
    return ctx.changed(before, after, f"tagged {name} {tag}", f"{name} already has tag {tag}")


def cmd_untag(args: argparse.Namespace, ctx: Context) -> int:
    """Remove a tag from a tenant."""
    name, tag = check_tenant_name(args.tenant), check_tag_name(args.tag)
    before = ctx.store.revision()
    after = ctx.store.untag(name, tag, actor=ctx.actor)
    return ctx.changed(before, after, f"removed tag {tag} from {name}", f"{name} has no tag {tag}")


def cmd_rule(args: argparse.Namespace, ctx: Context) -> int:
    """Set (``rule TAG VERSION``) or remove (``rule --remove TAG``) a tag rule."""
    tag = check_tag_name(args.tag)
    if args.remove and args.version is not None:
        raise UsageError(f"give either `rule {tag} VERSION` or `rule --remove {tag}`, not both")
    if not args.remove and args.version is None:
        raise UsageError(
            f"give the version tenants tagged {tag} should get (`rule {tag} VERSION`), "
            f"or --remove to delete the rule"
        )
    before = ctx.store.revision()
    if args.remove:
        after = ctx.store.remove_rule(tag, actor=ctx.actor)
        return ctx.changed(
            before, after, f"removed the rule for {tag}", f"there is no rule for {tag}"
        )
    after = ctx.store.set_rule(tag, args.version, actor=ctx.actor)
    return ctx.changed(
        before,
        after,
        f"tenants tagged {tag} now get {args.version}",
        f"the rule {tag} -> {args.version} is already set",
    )


def cmd_tenants_import(args: argparse.Namespace, ctx: Context) -> int:
    """Import tenants from a file (one per line, or CSV with tags); '-' reads stdin."""
    source: str | Iterable[str] = args.file
    if args.file == "-":  # its bytes, decoded as a file's are (the locale's codec may differ)
        stdin = getattr(sys.stdin, "buffer", None)
        source = sys.stdin if stdin is None else decode_lines(stdin, "standard input")
    if isinstance(source, str):
        if not os.path.exists(source):
            raise UsageError(f"no such file: {render.printable(source)}")
        if os.path.isdir(source):
            raise UsageError(f"{render.printable(source)} is a directory: give the file to import")
    before = ctx.store.revision()
    counts = import_tenants(
        ctx.store,
        source,
        replace_tags=args.replace_tags,
        batch_size=args.batch_size,
        actor=ctx.actor,
    )
    after = ctx.store.revision()
    if not counts.listed:
        ctx.print(f"the file lists no tenants: nothing imported (revision {after})")
        return EXIT_OK
    return ctx.changed(
        before,
        after,
        render.import_summary(counts),
        f"all {counts.listed} tenants are already registered with these tags",
    )


def cmd_tenants_add(args: argparse.Namespace, ctx: Context) -> int:
    """Add one tenant (and tags) to the registry."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    controller_for(args, ctx).add_tenant(name, args.tag)
    after = ctx.store.revision()
    return ctx.changed(before, after, f"registered {name}", f"{name} is already registered")

"""The ``visitors`` command: sample a share of anonymous visitors (apex, ``www``) into a version.

Routers started with a ``visitor_key`` keep each sampled visitor on its version through a
signed cookie (see :mod:`cohortroute.assign.visitors`). Every change is audited.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from ..changes import set_visitor_sample
from ..policy import format_percent
from .context import EXIT_OK, Context
from .options import Subparsers, add_command, add_json
from .shapes import JsonShape

log = logging.getLogger(__name__)

SAMPLE = JsonShape(
    "`visitors --json`",
    (
        ("version", "the version sampled visitors get, or `null` when sampling is off"),
        ("percent", "the share of visitors sampled, in percent"),
        ("salt", "the sample's own salt (a new one draws new visitors)"),
    ),
)


def _verb(verbs: Subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """One verb, its help also its description (what ``--help`` and docs/cli.md show)."""
    parser: argparse.ArgumentParser = verbs.add_parser(name, help=help, description=help)
    return parser


def register(commands: Subparsers) -> None:
    """Add ``visitors show|set|off``."""
    p = add_command(
        commands,
        "visitors",
        cmd_visitors,
        "sample a share of anonymous visitors (no tenant: apex, www) into a version",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = _verb(verbs, "show", "print the sample")
    set_ = _verb(verbs, "set", "serve PERCENT of anonymous visitors VERSION")
    set_.add_argument("version", metavar="VERSION", help="the version sampled visitors get")
    set_.add_argument(
        "--percent", required=True, metavar="P", help="the share to sample, e.g. 5 or 0.5"
    )
    set_.add_argument(
        "--salt", help="the sample's salt (kept while VERSION stays the same; new otherwise)"
    )
    off = _verb(verbs, "off", "stop sampling: every anonymous visitor gets the default")
    for verb in (show, set_, off):
        add_json(verb, SAMPLE)


def cmd_visitors(args: argparse.Namespace, ctx: Context) -> int:
    """Show, set or stop the sample."""
    if args.verb == "set":
        ctx.store.write(
            set_visitor_sample(args.version, args.percent, salt=args.salt), actor=ctx.actor
        )
    elif args.verb == "off":
        ctx.store.write(set_visitor_sample(None), actor=ctx.actor)
    visitors = dict(ctx.store.policy().visitors)
    shown: dict[str, Any] = {
        "version": visitors.get("version"),
        "percent": int(visitors.get("percent", 0)) / 100,
        "salt": visitors.get("salt"),
    }
    if args.json:
        ctx.emit_json(shown)
    else:
        ctx.print(describe(visitors))
    return EXIT_OK


def describe(visitors: Mapping[str, Any]) -> str:
    """The anonymous visitors' sample in one line (``status`` shows it too)."""
    if not visitors.get("version"):
        return "anonymous visitors: not sampled (everybody gets the default)"
    return (
        f"anonymous visitors: {format_percent(int(visitors['percent']))} sampled into "
        f"{visitors['version']} (salt {visitors['salt']})"
    )

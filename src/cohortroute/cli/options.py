"""The command-line framework on argparse: registering commands and groups, shared options.

Adding a command: write ``handler(args, ctx) -> int`` in the module of its verb group and
register it there with :func:`add_command`; a new group (``tenants``) starts with
:func:`add_group`. The argument types here validate while parsing, so a bad value is a usage
error (exit 2) before any store is opened.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError
from ..policy import parse_percent
from .context import ENV_STORE, Context

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Context], int]
"""A command: runs with the parsed arguments and the context, returns the exit code."""

Subparsers = Any
"""What ``add_subparsers`` returns (argparse keeps its type private)."""


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the command (``--store X status`` = ``status --store X``).

    Defaults are SUPPRESS so a value given before the command is not reset by the subparser.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"the store URL, e.g. sqlite:///state.db (default: ${ENV_STORE})",
    )
    group.add_argument(
        "--actor",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="who to record in the audit log for changes (default: $USER)",
    )
    return common


COMMON = _common_options()
"""The parent parser of every command and group."""


def add_command(
    subparsers: Subparsers,
    name: str,
    handler: Handler,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Register one command: ``handler(args, ctx)`` runs it and returns the exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        parents=[COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def add_group(
    subparsers: Subparsers, name: str, help: str, description: str | None = None
) -> Subparsers:
    """Register a command group (``rollout``, ``tenants``...); returns its actions' subparsers.

    Add each action to the returned object with :func:`add_command`.
    """
    group: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description or help, parents=[COMMON]
    )
    return group.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output with stable keys."""
    parser.add_argument(
        "--json", action="store_true", help="print JSON with stable keys (see docs/cli.md)"
    )


def positive_int(text: str) -> int:
    """``--limit``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 1")
    return value


def percent(text: str) -> str:
    """A percentage (``5``, ``0.5``, ``5%``), validated now and passed on as written."""
    try:
        parse_percent(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def port(text: str) -> int:
    """``--port``: 0-65535, where 0 lets the system pick a free port."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0-65535 (0 picks a free one)")
    return value

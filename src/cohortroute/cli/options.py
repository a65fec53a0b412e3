"""The command-line framework on argparse: registering commands and groups, shared options.

Adding a command: write ``handler(args, ctx) -> int`` in the module of its verb group and
register it there with :func:`add_command`; a new group (``tenants``) starts with
:func:`add_group`. The argument types here validate while parsing, so a bad value is a usage
error (exit 2) before any store is opened.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from typing import Any

from .. import policy
from ..bucketing import BUCKETERS
from ..errors import ValidationError, quoted
from ..policy import parse_percent
from .context import ENV_STORE, Context
from .shapes import JsonShape

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Context], int]
"""A command: runs with the parsed arguments and the context, returns the exit code."""

Subparsers = Any
"""What ``add_subparsers`` returns (argparse keeps its type private)."""


STORE_HELP = f"the store URL, e.g. sqlite:///state.db (default: ${ENV_STORE})"
"""What ``--store`` says in every command's help but those that choose their own store."""


def _common_options(store_help: str = STORE_HELP) -> argparse.ArgumentParser:
    """Options accepted before or after the command (``--store X status`` = ``status --store X``).

    Defaults are SUPPRESS so a value given before the command is not reset by the subparser.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
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
    store_help: str | None = None,
) -> argparse.ArgumentParser:
    """Register one command: ``handler(args, ctx)`` runs it and returns the exit code.

    ``store_help`` replaces what ``--store`` says, for a command that does not read
    ``$COHORTROUTE_STORE`` (the demo).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        parents=[COMMON if store_help is None else _common_options(store_help)],
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


def add_json(parser: argparse.ArgumentParser, shape: JsonShape) -> None:
    """``--json``: machine-readable output with stable keys, documented by ``shape``.

    The reference (docs/cli.md) is generated from the shape, so every key is explained there.
    """
    parser.add_argument(
        "--json", action="store_true", help="print JSON with stable keys (see docs/cli.md)"
    )
    parser.set_defaults(json_shape=shape)


_WHOLE = re.compile(r"[0-9]+\Z")
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?\Z")


def whole_number(text: str, *, minimum: int, maximum: int) -> int:
    """An ASCII whole number in ``minimum..maximum``, else an argparse usage error.

    ``int()`` would also take full-width digits, ``' 7 '`` and ``'1_000'``: options take ASCII
    digits only.
    """
    if _WHOLE.match(text) is None:
        raise argparse.ArgumentTypeError(f"{quoted(text, 40)} is not a whole number like {minimum}")
    value = int(text) if len(text) <= 18 else maximum + 1
    if not minimum <= value <= maximum:
        raise argparse.ArgumentTypeError(
            f"{quoted(text, 40)}: give a number from {minimum} to {maximum}"
        )
    return value


def positive_int(text: str) -> int:
    """``--limit``, ``--batch-size``: a whole number of at least 1 (at most a million)."""
    return whole_number(text, minimum=1, maximum=MAX_COUNT)


def count(text: str) -> int:
    """``--max-failures``: a whole number of at least 0 (at most a million)."""
    return whole_number(text, minimum=0, maximum=MAX_COUNT)


MAX_COUNT = 1_000_000
"""The largest ``--limit``, ``--batch-size`` or ``--max-failures`` (stores take 64-bit limits)."""


def seconds(minimum: float, maximum: float, *, zero: bool = True) -> Callable[[str], float]:
    """An option type for a length of time: ASCII decimal seconds within ``[minimum, maximum]``.

    ``float()`` would take ``nan``, ``inf``, ``-1`` and full-width digits: each would silently
    turn a wait off or make it endless, so only plain digits are accepted. ``zero=False``
    refuses 0.
    """

    def parse(text: str) -> float:
        if _DECIMAL.match(text) is None:
            raise argparse.ArgumentTypeError(
                f"{quoted(text, 40)} is not a number of seconds: give plain digits, like 30 or 2.5"
            )
        value = float(text)
        if not minimum <= value <= maximum or (value == 0 and not zero):
            low = "more than 0" if not zero and minimum == 0 else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: give {low} and at most {maximum:g}")
        return value

    parse.__name__ = "seconds"  # argparse names the type in its messages
    return parse


def percent(text: str) -> str:
    """A percentage (``5``, ``0.5``, ``5%``), validated now and passed on as written."""
    try:
        parse_percent(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def port(text: str) -> int:
    """``--port``: 0-65535, where 0 lets the system pick a free port."""
    if _WHOLE.match(text) is None or len(text) > 5 or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"{quoted(text, 40)}: a port is 0-65535 (0 picks a free one)"
        )
    return int(text)


MAX_ACTOR = 200
"""The longest ``--actor``: a name, not a document (``history`` prints it in a column)."""


def check_text(args: argparse.Namespace) -> None:
    """Refuse arguments that cannot be stored or printed, before any store is touched.

    A shell passes bytes that are not UTF-8 as surrogate escapes; they cannot be encoded for a
    store (or a terminal), so they are a usage error here rather than a traceback later.
    ``--actor`` is also held to one printable line of at most :data:`MAX_ACTOR` characters.
    """
    for dest, value in vars(args).items():
        for text in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise argparse.ArgumentTypeError(
                    f"{quoted(text, 60)} (the {dest.replace('_', ' ')}) is not valid UTF-8 text; "
                    "check the terminal's encoding, or type the value in UTF-8"
                ) from None
    actor = getattr(args, "actor", None)
    if actor is not None:
        if not actor.isprintable() or not actor.strip():
            raise argparse.ArgumentTypeError(
                f"--actor {quoted(actor, 60)}: give a name on one line, without control characters"
            )
        if len(actor) > MAX_ACTOR:
            raise argparse.ArgumentTypeError(
                f"--actor is {len(actor)} characters long: give a name of at most {MAX_ACTOR}"
            )


MAX_SALT = policy.MAX_SALT
"""The longest ``--salt``: a Unleash groupId or a word of your own, hashed on every decision."""


def salt(text: str) -> str:
    """``--salt``: one printable line of at most :data:`MAX_SALT` characters."""
    try:
        return policy.check_salt(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("salt ")) from None


def bucketer(text: str) -> str:
    """``--bucketer``: one of the registered bucket functions (``cohortroute.bucketing``)."""
    if text not in BUCKETERS:
        raise argparse.ArgumentTypeError(
            f"unknown bucketer {text!r}; choose one of {', '.join(BUCKETERS)}"
        )
    return text


def add_assign_option(parser: argparse.ArgumentParser) -> None:
    """``--assign``: the routers' custom assignment backends, so the command decides as they do.

    :func:`cohortroute.cli.loader.load_assign` loads what it names.
    """
    parser.add_argument(
        "--assign",
        metavar="MODULE:ATTR",
        help="your routers' custom assignment backends (a list, a Chain, or a callable "
        "returning one), e.g. myapp.routing:backends; without it only pins, tag rules and the "
        "rollout decide (who moves, whom `rollout run` migrates, what `explain` and `status` say)",
    )

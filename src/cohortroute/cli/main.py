"""The entry point: assemble the parser from the verb groups, run a command, map its errors.

Exit codes: 0 success; 2 a usage or validation error (bad arguments, unknown version, bad
percentage, a malformed or unreachable store URL, a conflicting change, a port the demo cannot
use); 1 anything else (the store failed); 130 interrupted. Expected errors print one line to
stderr saying what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .. import __version__
from ..advice import said
from ..errors import (
    CohortRouteError,
    ConfigurationError,
    ConflictError,
    ListenError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
)
from . import (
    admin,
    demo,
    guard,
    override,
    proxy,
    report,
    rollout,
    state,
    tenants,
    ticket,
    versions,
    visitors,
)
from .context import ENV_STORE, EXIT_ERROR, EXIT_USAGE, Context, UsageError
from .options import COMMON, Handler, check_text

log = logging.getLogger(__name__)

USAGE_ERRORS = (
    UsageError,
    ConfigurationError,
    ValidationError,
    ConflictError,
    ListenError,
    StoreUnavailableError,  # an unreachable store is a wrong URL more often than not
)
"""Errors that exit 2: the command line (or what it names) needs fixing, not the store."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per verb, each bound to its handler."""
    parser = argparse.ArgumentParser(
        prog="cohortroute",
        description=(
            "Operate cohortroute: see which version each tenant gets and why, pin and tag "
            "tenants, set tag rules, run rollouts, read the audit log, or start the demo."
        ),
        epilog=(
            f"The store is --store URL or ${ENV_STORE}. Exit codes: 0 ok, 2 usage or "
            "validation error, 1 anything else."
        ),
        parents=[COMMON],
    )
    parser.add_argument("--version", action="version", version=f"cohortroute {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (
        state,
        tenants,
        versions,
        rollout,
        guard,
        report,
        ticket,
        override,
        visitors,
        proxy,
        demo,
        admin,
    ):
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    return run(sys.argv[1:] if argv is None else argv, out=sys.stdout, err=sys.stderr)


def run(argv: Sequence[str], *, out: TextIO, err: TextIO) -> int:
    """Parse ``argv``, run the command, and map expected errors to a message and exit code.

    Everything the command prints goes to ``out`` and ``err``, argparse's help and usage
    errors included, so callers (and tests) can run the CLI in-process.
    """
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        check_text(args)
    except argparse.ArgumentTypeError as exc:
        return _fail(err, exc, EXIT_USAGE)
    store_url = getattr(args, "store", None) or os.environ.get(ENV_STORE) or None
    ctx = Context(store_url, getattr(args, "actor", None), out, err)
    handler: Handler = args.handler
    try:
        code = handler(args, ctx)
        out.flush()  # inside the try: a reader that went away is handled below
        return code
    except KeyboardInterrupt:
        print("cohortroute: interrupted", file=err)
        return 130
    except USAGE_ERRORS as exc:
        return _fail(err, exc, EXIT_USAGE, ctx.command())
    except CohortRouteError as exc:  # StoreError and the rest: the store failed
        return _fail(err, exc, EXIT_ERROR, ctx.command())
    except BrokenPipeError:
        # The reader went away (`cohortroute history | head`): not worth a traceback. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    finally:
        with contextlib.suppress(CohortRouteError):
            ctx.close()


def _fail(err: TextIO, exc: BaseException, code: int, program: str = "cohortroute") -> int:
    """Print an expected error as one line (with a store error's cause) and return ``code``.

    Advice the error carries is said the CLI's way (``--force``, not ``force=True``), with
    ``program`` (``cohortroute --store URL``) before each command.
    """
    message = said(exc, program)
    cause = exc.__cause__
    if isinstance(exc, StoreError) and cause is not None:
        detail = " ".join(str(cause).split())
        if detail not in " ".join(message.split()):
            message = f"{message} ({detail})"
    log.debug("exit %d: %s", code, message, exc_info=exc)
    print(f"cohortroute: error: {message}", file=err)
    return code

"""``--app`` and ``--assign MODULE:ATTR``: load the app's Migrations and its routers' assignment
backends, and build the rollout controller with them.

The current directory is importable, as with gunicorn, so ``--app myapp.migrations:migrations``
works from the project's root. :func:`import_attr` is the one place a ``MODULE:ATTR`` is
imported, so both options accept and refuse the same spellings.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from .context import Context, UsageError

if TYPE_CHECKING:
    from ..assign.chain import Chain
    from ..migrations import Migrations
    from ..rollout import RolloutController

log = logging.getLogger(__name__)


def add_app_option(parser: argparse.ArgumentParser) -> None:
    """``--app``: the option of every command that may migrate tenant data."""
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="your Migrations object (or a callable returning it), e.g. myapp.migrations:"
        "migrations; needed when the candidate's tenant data must be migrated",
    )


def import_attr(spec: str, option: str, example: str) -> Any:
    """The object ``MODULE:ATTR`` names (``ATTR`` may be dotted), for the option ``option``.

    The current directory goes on ``sys.path`` first. A spec without both parts, a module that
    does not import and a missing attribute are usage errors naming ``option`` (and ``example``,
    a well-formed spec), so a typo exits 2 with the reason rather than a traceback.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"{option} wants MODULE:ATTR, like {example}; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{option} {spec}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"{option} {spec}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


def load_migrations(spec: str | None) -> Migrations | None:
    """``--app module:attr`` -> the Migrations it names (None without ``--app``).

    The attribute may be a :class:`~cohortroute.migrations.Migrations`, an object with a
    ``migrations`` attribute, or a callable returning one.
    """
    if spec is None:
        return None
    from ..migrations import Migrations

    target = import_attr(spec, "--app", "myapp.migrations:migrations")
    if not isinstance(target, Migrations):
        target = getattr(target, "migrations", target)
    if not isinstance(target, Migrations) and callable(target):
        target = target()
    if not isinstance(target, Migrations):
        raise UsageError(
            f"--app {spec} is a {type(target).__name__}, not cohortroute.migrations.Migrations"
        )
    log.debug("--app %s: loaded %r", spec, target)
    return target


def load_assign(spec: str | None) -> Chain | None:
    """``--assign module:attr`` -> the assignment chain it names (None without ``--assign``).

    The attribute may be a list of backends, one backend, a :class:`~cohortroute.Chain` (or an
    object with a ``chain``, such as a router), or a callable returning one of those. The chain
    is quiet (see :attr:`~cohortroute.Chain.quiet`).
    """
    if spec is None:
        return None
    from ..assign.chain import Chain

    target = import_attr(spec, "--assign", "myapp.routing:backends")
    target = getattr(target, "chain", target)
    if callable(target) and not isinstance(target, Chain) and not hasattr(target, "assign"):
        target = target()
        target = getattr(target, "chain", target)
    if not isinstance(target, Chain):
        if hasattr(target, "assign"):
            target = [target]
        if not isinstance(target, list | tuple):
            raise UsageError(
                f"--assign {spec} is a {type(target).__name__}, not assignment backends or a Chain"
            )
        log.debug("--assign %s: loaded %d backend(s)", spec, len(target))
        target = Chain(target)  # a malformed backend: ConfigurationError, saying what is wrong
    # A failing backend is one warning line: the commands show its error in their output, so a
    # traceback on stderr would only bury the answer.
    target.quiet = True
    return target


def controller_for(args: argparse.Namespace, ctx: Context) -> RolloutController:
    """The controller a command runs with: its ``--app``, ``--assign`` (the routers' chain, so it
    decides as they do), ``--drain``, ``--settle`` and ``--lease``."""
    from ..rollout import RolloutController

    lease = getattr(args, "lease", None)
    return RolloutController(
        ctx.store,
        migrations=load_migrations(getattr(args, "app", None)),
        actor=ctx.actor,
        drain=getattr(args, "drain", None),
        settle=getattr(args, "settle", None),
        assign=load_assign(getattr(args, "assign", None)),
        **({} if lease is None else {"lease_ttl": lease}),
    )

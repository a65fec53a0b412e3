"""``--app MODULE:ATTR``: load the application's Migrations, and build the rollout controller.

The current directory is importable, as with gunicorn, so ``--app myapp.migrations:migrations``
works from the project's root.
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


def load_migrations(spec: str | None) -> Migrations | None:
    """``--app module:attr`` -> the Migrations it names (None without ``--app``).

    The attribute may be a :class:`~cohortroute.migrations.Migrations`, an object with a
    ``migrations`` attribute, or a callable returning one.
    """
    if spec is None:
        return None
    from ..migrations import Migrations

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--app wants MODULE:ATTR, like myapp.migrations:migrations; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--app {spec}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--app {spec}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
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


def controller_for(args: argparse.Namespace, ctx: Context) -> RolloutController:
    """The controller a command runs with: its ``--app``, ``--drain``, ``--settle``, ``--lease``."""
    from ..rollout import RolloutController

    lease = getattr(args, "lease", None)
    return RolloutController(
        ctx.store,
        migrations=load_migrations(getattr(args, "app", None)),
        actor=ctx.actor,
        drain=getattr(args, "drain", None),
        settle=getattr(args, "settle", None),
        **({} if lease is None else {"lease_ttl": lease}),
    )

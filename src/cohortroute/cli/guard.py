"""The ``guard`` command: halt or roll back the rollout automatically from per-tenant evidence.

Runs :class:`cohortroute.guard.Guard` every ``--interval`` seconds (or once, for cron), holding
the fleet's guard lease so only one evaluator acts at a time. ``rollout run`` runs the same
check before each pass (:func:`guard_step`) unless ``--no-guard``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import CohortRouteError, ConfigurationError, quoted
from .context import EXIT_OK, Context, UsageError
from .loader import add_app_option, load_migrations
from .options import Subparsers, add_command, add_json, seconds
from .shapes import JsonShape

if TYPE_CHECKING:
    from ..guard import Check, Guard

log = logging.getLogger(__name__)

GUARD = JsonShape(
    "`guard --once --json`",
    (
        ("leader", "`false` when another guard holds the lease (nothing was judged)"),
        ("verdict", "the verdict line, as `report` starts"),
        ("kind", "`hold`, `no-traffic`, `rollback` or `halt`; `null` without a rollout"),
        ("actions", "one sentence per action taken (tenant sent back, halt, rollback, extension)"),
    ),
)

INTERVAL = seconds(1, 86_400)
"""``guard --interval``: a second to a day."""


def action(text: str) -> tuple[str, str]:
    """``--action 5xx=halt``: what a cohort regression on a metric does."""
    metric, _, what = text.partition("=")
    from ..guard.evidence import METRICS

    if metric not in METRICS or what not in ("rollback", "halt"):
        raise argparse.ArgumentTypeError(
            f"{quoted(text, 40)}: give METRIC=ACTION with METRIC one of {', '.join(METRICS)} and "
            "ACTION rollback or halt, like 5xx=halt"
        )
    return metric, what


def register(commands: Subparsers) -> None:
    """Add ``guard``."""
    p = add_command(
        commands,
        "guard",
        cmd_guard,
        "watch the rollout: send broken tenants back, halt or roll back on evidence",
        description=(
            "Compare every candidate tenant with its own baseline on the stable version, "
            "corrected by the stable cohort over the same minutes, with a sequential test that "
            "may be checked every minute (docs/guard.md). One tenant clearly broken: sent back "
            "and the rollout paused. A cohort regression: rolled back (or halted, per metric). "
            "A timed plan's step is extended until it has seen enough traffic. Only the holder "
            "of the store's guard lease acts; run it on several hosts for availability."
        ),
    )
    p.add_argument("--once", action="store_true", help="one check, then exit (for cron)")
    p.add_argument(
        "--interval", type=INTERVAL, default=60.0, metavar="SECONDS", help="between checks"
    )
    p.add_argument(
        "--action",
        type=action,
        action="append",
        default=[],
        metavar="METRIC=ACTION",
        help="what a regression of 5xx, slow or tickets does: rollback (default) or halt",
    )
    p.add_argument("--holder", metavar="NAME", help="this guard's name in the lease (host:pid)")
    add_app_option(p)
    add_json(p, GUARD)


def add_guard_option(parser: argparse.ArgumentParser) -> None:
    """``rollout run --no-guard``."""
    parser.add_argument(
        "--no-guard",
        action="store_true",
        help="do not run the guard's check before each pass (see `cohortroute guard`)",
    )


def _guard(args: argparse.Namespace, ctx: Context, interval: float) -> Guard:
    from ..guard import Guard, GuardConfig

    try:
        config = GuardConfig(actions=dict(getattr(args, "action", None) or []))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Guard(
        ctx.store,
        ctx.sink,
        config=config,
        clock=ctx.clock,
        holder=getattr(args, "holder", None),
        interval=interval,
        migrations=load_migrations(getattr(args, "app", None)),
        log_actions=False,  # printed by the command: a warning too would say each twice
    )


def _show(args: argparse.Namespace, ctx: Context, check: Check) -> None:
    if getattr(args, "json", False):
        kind = None if check.assessment is None else check.assessment.verdict.kind
        ctx.emit_json(
            {"leader": check.leader, "verdict": check.line, "kind": kind, "actions": check.actions}
        )
        return
    ctx.print(check.line, *(f"  {line}" for line in check.actions))


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (what systemd, docker and kubernetes send to stop a service) ends the command
    like Ctrl-C: ``KeyboardInterrupt`` unwinds it, so ``finally`` blocks give the guard's lease
    up. Only in the main thread (signal handlers can only be set there); restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def guarded_loop(args: argparse.Namespace) -> Iterator[None]:
    """Around ``rollout run``: SIGTERM stops it like Ctrl-C, and the lease its guard checks
    took (:func:`guard_step`) is given up when it ends, however it ends."""
    try:
        with stopped_by_sigterm():
            yield
    finally:
        guard: Guard | None = getattr(args, "_guard", None)
        if guard is not None:
            with contextlib.suppress(CohortRouteError):
                guard.release()


def cmd_guard(args: argparse.Namespace, ctx: Context) -> int:
    """Check the rollout once, or every ``--interval`` seconds until interrupted."""
    guard = _guard(args, ctx, args.interval)
    with stopped_by_sigterm():
        if args.once:
            try:
                _show(args, ctx, guard.check())
            finally:
                guard.release()
            return EXIT_OK
        guard.run(sleep=ctx.sleep, report=lambda check: _show(args, ctx, check))
    return EXIT_OK


def guard_step(args: argparse.Namespace, ctx: Context) -> bool:
    """The guard's check inside ``rollout run``; True when it rolled the rollout back."""
    if getattr(args, "no_guard", False):
        return False
    guard: Guard | None = getattr(args, "_guard", None)
    if guard is None:
        try:
            guard = _guard(args, ctx, float(getattr(args, "interval", 60.0)))
        except ConfigurationError as exc:  # a custom store keeps no signals: nothing to guard
            log.debug("no guard in rollout run: %s", exc)
            return False
        args._guard = guard  # given up when the loop ends (guarded_loop)
    check = guard.check()
    for line in check.actions:
        ctx.print(f"guard: {line}")
    rolled_back = check.assessment is not None and check.assessment.verdict.kind == "rollback"
    if rolled_back and ctx.store.policy().rollout is None:
        ctx.print(f"the guard rolled the rollout back; `{ctx.command()} report` says why")
        return True
    return False

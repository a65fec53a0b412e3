"""The ``rollout`` group: start, set, advance, preview, halt, resume, run, roll back, finalize.

The verbs of :class:`cohortroute.rollout.RolloutController` (see docs/rollouts.md); each action
builds the controller from its options (:func:`~cohortroute.cli.loader.controller_for`:
``--app``, ``--assign``...).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from ..bucketing import BUCKETERS
from ..errors import ConflictError, ValidationError
from ..policy import check_tenant_name, format_percent, parse_percent
from ..version_needs import app_option
from . import render, shapes
from .context import EXIT_ERROR, EXIT_OK, Context, UsageError
from .guard import add_guard_option, guard_step, guarded_loop
from .loader import add_app_option, controller_for
from .options import (
    Subparsers,
    add_assign_option,
    add_command,
    add_group,
    add_json,
    bucketer,
    count,
    percent,
    salt,
    seconds,
    whole_number,
)

if TYPE_CHECKING:
    from ..rollout import RunResult

log = logging.getLogger(__name__)


WAIT = seconds(0, 3600)
"""``--drain``, ``--settle``: 0 to an hour (0 turns the wait off, at the operator's word)."""
LEASE = seconds(1, 86_400)
"""``--lease``: a second to a day."""
INTERVAL = seconds(0, 86_400, zero=False)
"""``run --interval``: more than 0, at most a day."""


def concurrency(text: str) -> int:
    """``--concurrency``: 1 to 256 tenants at a time (each one a thread)."""
    return whole_number(text, minimum=1, maximum=256)


def plan(text: str) -> tuple[str, ...]:
    """``--plan 1,5,25,50,100``: percent steps, each validated while parsing."""
    steps = tuple(p.strip() for p in text.split(",") if p.strip())
    if not steps:
        raise argparse.ArgumentTypeError("give the steps as percentages, like 1,5,25,50,100")
    for step in steps:
        percent(step)
    return steps


def duration(text: str) -> float:
    """``--every 2h``: seconds, or a number with s, m, h or d."""
    from ..rollout import parse_duration

    try:
        return parse_duration(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_settle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settle",
        type=WAIT,
        default=None,
        metavar="SECONDS",
        help="before lowering or finalizing: how long routers get to record the tenants they "
        "just served (default: 1 s plus twice the store's refresh interval)",
    )


def _add_runner_options(parser: argparse.ArgumentParser) -> None:
    add_app_option(parser)
    add_assign_option(parser)
    parser.add_argument(
        "--concurrency", type=concurrency, default=4, metavar="N", help="tenants at a time (1-256)"
    )
    parser.add_argument(
        "--drain",
        type=WAIT,
        default=None,
        metavar="SECONDS",
        help="wait between marking a tenant migrating (503) and touching its data; at least "
        "the routers' refresh interval plus the longest request (default: 2 x refresh)",
    )
    parser.add_argument(
        "--lease",
        type=LEASE,
        default=None,
        metavar="SECONDS",
        help="how long a runner's claim on a tenant lasts without renewal: a killed runner's "
        "tenants wait this long (in 503) before another runner resumes them (default 60)",
    )
    _add_settle(parser)
    add_json(parser, shapes.RUN_RESULT)


def register(commands: Subparsers) -> None:
    """Add the ``rollout`` group and its actions."""
    actions = add_group(
        commands,
        "rollout",
        "start, advance, preview, halt, run, roll back or finalize a rollout",
        "Run the rollout: at most one version is rolled out at a time (see docs/rollouts.md).",
    )
    _register_plan_verbs(actions)
    _register_runner_verbs(actions)


def _register_plan_verbs(actions: Subparsers) -> None:
    """``start``, ``set``, ``advance``, ``preview``, ``halt``, ``resume``: the rollout itself."""
    p = add_command(
        actions, "start", cmd_rollout_start, "start rolling out VERSION to a share of tenants"
    )
    p.add_argument("version", metavar="VERSION", help="the candidate version to roll out")
    p.add_argument(
        "--percent",
        type=percent,
        default=None,
        metavar="P",
        help="share of tenants to start with: 5, 0.5 or 5%% (default: the plan's first step, "
        "else 0)",
    )
    p.add_argument(
        "--plan",
        type=plan,
        default=(),
        metavar="P,P,...",
        help="percent steps that go up, e.g. 1,5,25,50,100 (then `rollout advance`)",
    )
    p.add_argument(
        "--every",
        type=duration,
        default=None,
        metavar="DURATION",
        help="minimum dwell per step, e.g. 2h, 90m, 3600 (advance refuses earlier)",
    )
    p.add_argument(
        "--auto",
        action="store_true",
        help="timed plan: move to the next step by itself every --every (no scheduler needed)",
    )
    add_app_option(p)
    add_assign_option(p)
    p.add_argument(
        "--salt",
        type=salt,
        default=None,
        help="bucketing salt (default: a fresh random one, so each rollout picks new tenants); "
        "with --bucketer unleash, the toggle's Unleash groupId (by default its name)",
    )
    p.add_argument(
        "--bucketer",
        type=bucketer,
        default="sha256",
        metavar="NAME",
        help=f"the bucket function: {' or '.join(BUCKETERS)} (default sha256); unleash puts "
        "every tenant in the cohort Unleash's gradual rollout gives it (needs --salt GROUP_ID)",
    )

    p = add_command(actions, "set", cmd_rollout_set, "set the running rollout's percentage")
    p.add_argument("percent", metavar="PERCENT", type=percent, help="5, 0.5 or 5%%")
    _add_settle(p)
    add_assign_option(p)

    p = add_command(actions, "advance", cmd_rollout_advance, "move to the plan's next step")
    p.add_argument("--force", action="store_true", help="advance before the minimum dwell")
    add_assign_option(p)

    p = add_command(
        actions,
        "preview",
        cmd_rollout_preview,
        "exactly which registered tenants move at the next step (a dry run)",
    )
    p.add_argument(
        "--percent", type=percent, default=None, metavar="P", help="preview this percentage"
    )
    add_assign_option(p)
    add_json(p, shapes.PREVIEW)

    p = add_command(
        actions,
        "status",
        cmd_rollout_status,
        "the rollout as it stands, and how many tenants are registered, migrated, failing...",
    )
    add_json(p, shapes.ROLLOUT_STATUS)

    p = add_command(actions, "halt", cmd_rollout_halt, "freeze the rollout where it is")
    p.add_argument("--reason", default=None, help="why (shown by status and history)")

    add_command(actions, "resume", cmd_rollout_resume, "continue a halted rollout")


def _register_runner_verbs(actions: Subparsers) -> None:
    """``run``, ``rollback``, ``finalize``: the verbs that move tenant data."""
    p = add_command(
        actions,
        "run",
        cmd_rollout_run,
        "migrate the tenants the rollout has reached (gated rollouts), with a progress bar",
        description=(
            "Migrate every tenant the rollout has reached whose data is not there yet, and "
            "resume migrations a killed runner left. Runs until the rollout ends (for timed "
            "plans), or one pass with --once (for cron). Exits 1 when a tenant failed."
        ),
    )
    _add_runner_options(p)
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument(
        "--interval", type=INTERVAL, default=30.0, metavar="SECONDS", help="between passes"
    )
    p.add_argument(
        "--max-failures",
        type=count,
        default=5,
        metavar="N",
        help="halt the rollout when more than N tenants fail in one pass (default 5)",
    )
    p.add_argument("--retry-failed", action="store_true", help="retry tenants that failed")
    add_guard_option(p)

    p = add_command(
        actions,
        "rollback",
        cmd_rollout_rollback,
        "move everybody (or --tenant T) back to the default version",
    )
    p.add_argument("--tenant", metavar="TENANT", default=None, help="only this tenant")
    p.add_argument(
        "--force", action="store_true", help="move back even where a downgrade step is missing"
    )
    _add_runner_options(p)

    p = add_command(
        actions,
        "finalize",
        cmd_rollout_finalize,
        "everybody to the candidate, which becomes the default",
    )
    p.add_argument(
        "--force", action="store_true", help="remove pins and tag rules to the old default"
    )
    _add_runner_options(p)


# --- the plan ----------------------------------------------------------------------------------


def cmd_rollout_start(args: argparse.Namespace, ctx: Context) -> int:
    """Start rolling out a version to a share of tenants (a fresh salt picks which)."""
    if args.auto and args.plan and args.every is not None and args.every <= 0:
        raise UsageError(
            f"--auto with --every {args.every:g} would pass every step at once: give each step "
            "a dwell above 0, like --every 2h"
        )
    if args.auto and not (args.plan and args.every):
        raise UsageError(
            "--auto moves through a plan on a timer: give it --plan P,P,... and --every "
            "DURATION too, like --plan 1,5,25,100 --every 2h --auto"
        )
    if args.bucketer == "unleash" and (args.salt is None or not args.salt.strip()):
        missing = "give" if args.salt is None else f"--salt {args.salt!r} is blank: give"
        raise UsageError(
            "--bucketer unleash buckets tenants as Unleash does within a groupId: "
            f"{missing} the toggle's groupId with --salt (Unleash's default groupId is the "
            "toggle's name), like --bucketer unleash --salt my-toggle"
        )
    before = ctx.store.revision()
    rollout = controller_for(args, ctx).start(
        args.version,
        plan=args.plan,
        percent=args.percent,
        every=args.every,
        auto=args.auto,
        salt=args.salt,
        bucketer=args.bucketer,
    )
    after = ctx.store.revision()
    if rollout.gated:
        app = (
            app_option(ctx.store.policy(), args.version)
            if args.app is None
            else f"--app {args.app}"
        )
        ctx.print(
            f"{args.version} needs a data migration: tenants move once "
            f"`{ctx.command()} rollout run {app}` has migrated them"
        )
    return ctx.changed(
        before,
        after,
        f"started the rollout of {args.version} at {format_percent(rollout.percent)}",
        "the rollout was not started",
    )


def cmd_rollout_set(args: argparse.Namespace, ctx: Context) -> int:
    """Set the running rollout's percentage (raising it only ever adds tenants)."""
    points = parse_percent(args.percent)
    before = ctx.store.revision()
    change = controller_for(args, ctx).set_percent(args.percent)  # lowering: the ratchet
    after = ctx.store.revision()
    candidate = change.rollout.candidate
    code = ctx.changed(
        before,
        after,
        f"the rollout of {candidate} is now at {format_percent(points)}",
        f"the rollout of {candidate} is already at {format_percent(points)}",
    )
    note = change.ratchet_note()
    if note is not None:
        ctx.print(note)
    return code


def cmd_rollout_advance(args: argparse.Namespace, ctx: Context) -> int:
    """Move the rollout to its plan's next step."""
    rollout = controller_for(args, ctx).advance(force=args.force)
    ctx.print(
        f"the rollout of {rollout.candidate} is now at {format_percent(rollout.percent)} "
        f"(step {rollout.step + 1} of {len(rollout.plan)}; revision {ctx.store.revision()})"
    )
    return EXIT_OK


def cmd_rollout_preview(args: argparse.Namespace, ctx: Context) -> int:
    """Exactly which tenants move at the next step (or at --percent), before anything moves."""
    preview = controller_for(args, ctx).preview(args.percent)
    if args.json:
        ctx.emit_json(render.preview_json(preview))
    else:
        ctx.print(*render.preview_text(preview))
    return EXIT_OK


def cmd_rollout_status(args: argparse.Namespace, ctx: Context) -> int:
    """The rollout as it stands, tenants per state, and the tenants whose migration failed."""
    status = controller_for(args, ctx).status()
    policy = ctx.store.policy()
    now = ctx.clock.time()
    if args.json:
        ctx.emit_json(render.rollout_status_json(status, policy, now))
    else:
        ctx.print(*render.rollout_status_text(status, policy, now, ctx.command()))
    return EXIT_OK


def cmd_rollout_halt(args: argparse.Namespace, ctx: Context) -> int:
    """Freeze the rollout: nobody new moves, nobody leaves the candidate."""
    rollout = controller_for(args, ctx).halt(args.reason)
    ctx.print(
        f"the rollout of {rollout.candidate} is halted at {format_percent(rollout.percent)}; "
        f"`{ctx.command()} rollout resume` continues it"
    )
    return EXIT_OK


def cmd_rollout_resume(args: argparse.Namespace, ctx: Context) -> int:
    """Continue a halted rollout."""
    rollout = controller_for(args, ctx).resume()
    ctx.print(f"the rollout of {rollout.candidate} continues at {format_percent(rollout.percent)}")
    return EXIT_OK


# --- tenant data -------------------------------------------------------------------------------


def _report(args: argparse.Namespace, ctx: Context, result: RunResult) -> int:
    if getattr(args, "json", False):
        ctx.emit_json(result.to_json())
    else:
        ctx.print(result.summary())
    return EXIT_OK if result.ok else EXIT_ERROR


def cmd_rollout_run(args: argparse.Namespace, ctx: Context) -> int:
    """Migrate the tenants the rollout has reached; loop until it ends, or --once."""
    with guarded_loop(args):  # SIGTERM stops it like Ctrl-C; the guard's lease is given up
        return _rollout_run(args, ctx)


def _rollout_run(args: argparse.Namespace, ctx: Context) -> int:
    controller = controller_for(args, ctx)
    failed = passes = False
    while True:
        if passes and controller.current() is None:  # finalized or rolled back meanwhile
            ctx.print("the rollout ended")
            return EXIT_ERROR if failed else EXIT_OK
        if guard_step(args, ctx):
            return EXIT_ERROR
        pending = controller.pending(retry_failed=args.retry_failed)
        try:
            result = controller.run(
                concurrency=args.concurrency,
                max_failures=args.max_failures,
                retry_failed=args.retry_failed,
                progress=render.ProgressBar(ctx.err, len(pending), "migrating"),
            )
        except ConflictError:
            if not passes or controller.current() is not None:
                raise
            continue  # the rollout ended between the check and the run
        first, passes = not passes, True
        failed |= not result.ok
        if args.once or result.halted:
            code = _report(args, ctx, result)
            return EXIT_ERROR if failed else code
        if result.results or first:  # the first pass says what it found, even if nothing
            ctx.print(result.summary())
        ctx.sleep(args.interval)


def cmd_rollout_rollback(args: argparse.Namespace, ctx: Context) -> int:
    """Move everybody (or one tenant) back to the default, data included."""
    if args.tenant is not None:
        name = check_tenant_name(args.tenant)
        if ctx.store.tenant(name).is_empty():
            raise UsageError(
                f"the store knows no tenant {name}: no router has served it and it was never "
                f"imported, so there is nothing to roll back. Check the name with "
                f"`{ctx.command()} explain {name}`"
            )
    result = controller_for(args, ctx).rollback(
        args.tenant, force=args.force, concurrency=args.concurrency
    )
    return _report(args, ctx, result)


def cmd_rollout_finalize(args: argparse.Namespace, ctx: Context) -> int:
    """Everybody to the candidate; the candidate becomes the default."""
    result = controller_for(args, ctx).finalize(force=args.force, concurrency=args.concurrency)
    return _report(args, ctx, result)

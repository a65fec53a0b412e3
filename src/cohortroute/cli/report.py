"""The ``report`` command: what the rollout does to each customer, verdict first.

:mod:`cohortroute.report` builds it from the signals and the guard's assessment; this prints
it as text or JSON.
"""

from __future__ import annotations

import argparse
import logging

from .context import EXIT_OK, Context
from .options import Subparsers, add_command, add_json, positive_int
from .shapes import JsonShape

log = logging.getLogger(__name__)

REPORT = JsonShape(
    "`report --json`",
    (
        ("verdict", "the verdict line (`rolled back: 5xx 8.1x own baseline, ...`)"),
        ("state", "`holding`, `halted`, `rolled back` or `finalized`"),
        (
            "rollout",
            "`candidate`, `stable`, `percent`, `started_at`, `halted`, `ended`, `ended_at`",
        ),
        (
            "evidence",
            "`kind`, `trigger`, per metric `metrics` (observed, expected, ratio, lambda, p, "
            "tenants, without, ratio_without, p_without, regressed) and `breakers`",
        ),
        (
            "gate",
            "the promotion gate: `theta`, `met`, `needed_expected`, `have_expected`, "
            "`more_requests`",
        ),
        ("actions", "the guard's audited actions: `at`, `action`, `tenant`, `line`"),
        (
            "versions",
            "per version: `version`, `role`, `tenant_count`, `requests`, `errors`, "
            "`error_ratio`, `slow`, `slow_ratio`, `p95` (seconds), `tickets`, and `tenants` "
            "worst first with the same counts per tenant, `expected_errors`, `expected_slow`, "
            "`evidence`, `held` and `action`",
        ),
    ),
)


def register(commands: Subparsers) -> None:
    """Add ``report``."""
    p = add_command(
        commands,
        "report",
        cmd_report,
        "what the rollout does to each customer: the verdict, then per version and tenant",
        description=(
            "The verdict line first, then per version and per tenant, worst first: requests, "
            "server errors and slow requests against each tenant's own baseline, p95, tickets, "
            "the evidence, the guard's actions and what the promotion gate still needs. Without "
            "a running rollout, the last one that ended."
        ),
    )
    p.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="tenants shown per version"
    )
    add_json(p, REPORT)


def cmd_report(args: argparse.Namespace, ctx: Context) -> int:
    """Print the report of the running (or last) rollout."""
    from ..guard import GuardConfig, assess
    from ..report import NO_ROLLOUT, build, render

    assessment = assess(ctx.store, ctx.sink, GuardConfig(), ctx.clock.time())
    if assessment is None:
        if args.json:
            ctx.emit_json({"verdict": NO_ROLLOUT, "state": None})
        else:
            ctx.print(NO_ROLLOUT)
        return EXIT_OK
    data = build(assessment, ctx.store.history(None, 5000), limit=args.limit)
    if args.json:
        ctx.emit_json(data)
    else:
        ctx.print(*render(data))
    return EXIT_OK

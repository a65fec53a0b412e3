"""The ``report`` command: what the rollout does to each customer, verdict first.

:mod:`cohortroute.report` builds it from the signals and the guard's assessment; this prints
it as text or JSON.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from ..errors import listed
from .context import EXIT_OK, Context
from .options import Subparsers, add_command, add_json, positive_int
from .shapes import JsonShape

if TYPE_CHECKING:
    from ..guard import Assessment

log = logging.getLogger(__name__)

PINNED = "pinned to the candidate: not the rollout's to move"
"""The note on a tenant a pin or tag rule keeps on the candidate: the guard leaves it out."""

NO_BASELINE = "no baseline"
"""The note on a candidate tenant without stable history before the rollout started."""

REPORT = JsonShape(
    "`report --json`",
    (
        ("verdict", "the verdict line (`rolled back: 5xx 8.1x own baseline, ...`)"),
        ("state", "`holding`, `halted`, `rolled back` or `finalized`"),
        (
            "rollout",
            "`candidate`, `stable`, `percent`, `started_at`, `halted`, `halt_reason` (why it "
            "was halted, by whom it says; `null` when not halted), `ended`, `ended_at`",
        ),
        (
            "evidence",
            "`kind`, `trigger`, `no_baseline` (candidate tenants without stable history: the "
            "guard cannot act on them yet), `pinned` (on the candidate by a pin or tag rule: "
            "left out, never sent back), per metric `metrics` (observed, expected, ratio, "
            "lambda, p, tenants, without, ratio_without, p_without, regressed) and `breakers`",
        ),
        (
            "gate",
            "the promotion gate: `theta`, `met`, `needed_expected`, `have_expected`, "
            "`more_requests` (`null` when it cannot be estimated), `reachable_expected` (the "
            "most the current tenants' baselines allow), `reason`",
        ),
        ("actions", "the guard's audited actions: `at`, `action`, `tenant`, `line`"),
        (
            "versions",
            "per version: `version`, `role`, `tenant_count`, `requests`, `errors`, "
            "`error_ratio`, `slow`, `slow_ratio`, `p95` (seconds), `tickets`, and `tenants` "
            "worst first with the same counts per tenant, `expected_errors`, `expected_slow`, "
            "`evidence`, `held`, `action` and `note` (`pinned to the candidate: ...`, "
            "`no baseline: ...` or `null`)",
        ),
    ),
)
"""Without a rollout every key is there, `null` but the verdict."""


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


def notes(a: Assessment) -> list[str]:
    """The summary lines under the rollout line: tenants the guard cannot act on, and why."""
    from ..guard.explain import no_baseline_text

    out = []
    if a.subject.ended is None and a.verdict.no_baseline:
        names = a.verdict.no_baseline
        out.append(f"{no_baseline_text(len(names))} ({listed(names)})")
    if a.verdict.pinned:
        out.append(f"{PINNED}: {', '.join(a.verdict.pinned)}")
    return out


def _tenant_notes(a: Assessment, data: dict[str, Any]) -> None:
    """Each candidate tenant's ``note``: pinned, no baseline, or None."""
    pinned, bare = set(a.verdict.pinned), set(a.verdict.no_baseline)
    for version in data["versions"]:
        for t in version["tenants"]:
            note = None
            if version["role"] == "candidate" and t["tenant"] in pinned:
                note = PINNED
            elif version["role"] == "candidate" and t["tenant"] in bare:
                note = f"{NO_BASELINE}: the guard cannot act on it yet"
            t["note"] = note


def _text(a: Assessment, data: dict[str, Any]) -> list[str]:
    """``render`` with the notes: summary lines after the rollout line, and in the ACTION
    column of a tenant nothing was done to."""
    from ..report import render

    shown = {
        **data,
        "versions": [
            {
                **v,
                "tenants": [
                    {**t, "action": t["action"] or (None if t["held"] else _short(t["note"]))}
                    for t in v["tenants"]
                ],
            }
            for v in data["versions"]
        ],
    }
    lines = render(shown)
    return lines[:2] + notes(a) + lines[2:]


def _short(note: str | None) -> str | None:
    if note is None:
        return None
    return "pinned" if note == PINNED else NO_BASELINE


def cmd_report(args: argparse.Namespace, ctx: Context) -> int:
    """Print the report of the running (or last) rollout."""
    from ..guard import GuardConfig, assess
    from ..report import NO_ROLLOUT, build

    assessment = assess(ctx.store, ctx.sink, GuardConfig(), ctx.clock.time())
    if assessment is None:
        if args.json:
            empty = dict.fromkeys((key for key, _ in REPORT.keys), None)
            ctx.emit_json({**empty, "verdict": NO_ROLLOUT})
        else:
            ctx.print(NO_ROLLOUT)
        return EXIT_OK
    data = build(assessment, ctx.store.history(None, 5000), limit=args.limit)
    _tenant_notes(assessment, data)
    if args.json:
        ctx.emit_json(data)
    else:
        ctx.print(*_text(assessment, data))
    return EXIT_OK

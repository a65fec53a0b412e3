"""The signals page: per-version charts over time (requests, error rate, p95, tickets), the
guard's verdict and promotion gate, and the worst tenants against their own baseline."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from werkzeug.wrappers import Response

from ..errors import CohortRouteError, StoreError, listed
from ..report import p95
from ..signals.model import SignalRow, Ticket
from .app import Ctx
from .charts import line_chart, minute_label
from .html import Html, button, definitions, field, form, link, table, tag, when

log = logging.getLogger(__name__)

WINDOW = 60
"""Minutes the charts show unless ``?minutes=`` says otherwise (at most a day)."""

WORST = 10
"""How many tenants the worst-tenants table lists per version."""

ACTIONS = 20
"""How many of the guard's latest actions the page lists (``cohortroute report`` has them all)."""

LEFT_OUT_SHOWN = 10
"""How many tenants left out of the guard's judgement (pinned) the page names."""


def series(
    rows: list[SignalRow], tickets: list[Ticket], minutes: list[int]
) -> dict[str, dict[str, list[float | None]]]:
    """metric -> version -> one value per minute."""
    index = {m: i for i, m in enumerate(minutes)}
    size = len(minutes)
    requests: dict[str, list[int]] = defaultdict(lambda: [0] * size)
    errors: dict[str, list[int]] = defaultdict(lambda: [0] * size)
    hist: dict[str, list[list[int]]] = defaultdict(lambda: [[0] * 15 for _ in range(size)])
    ticket_counts: dict[str, list[int]] = defaultdict(lambda: [0] * size)
    for row in rows:
        i = index.get(row.minute)
        if i is None:
            continue
        requests[row.version][i] += row.requests
        errors[row.version][i] += row.status[4]
        bucket = hist[row.version][i]
        for b, c in enumerate(row.histogram):
            bucket[b] += c
    for ticket in tickets:
        i = index.get(int(ticket.at // 60))
        if i is not None:
            ticket_counts[ticket.version][i] += 1
    versions = sorted(set(requests) | set(ticket_counts))
    return {
        "Requests per minute": {v: [float(n) for n in requests[v]] for v in versions},
        "Error rate (5xx share)": {
            v: [e / r if r else None for e, r in zip(errors[v], requests[v], strict=True)]
            for v in versions
        },
        "p95 latency (s)": {v: [p95(h) for h in hist[v]] for v in versions},
        "Tickets per minute": {v: [float(n) for n in ticket_counts[v]] for v in versions},
    }


def signals(ctx: Ctx) -> Response:
    """``GET /signals?minutes=N``."""
    try:
        window = max(5, min(int(ctx.request.args.get("minutes", WINDOW)), 1440))
    except ValueError:
        window = WINDOW
    now = ctx.admin.clock()
    last = int(now // 60)
    minutes = list(range(last - window + 1, last + 1))
    try:
        sink = ctx.admin.signals_sink()
    except CohortRouteError as exc:
        return ctx.render("Signals", tag("p", str(exc), role="alert"))
    try:
        rows = sink.rows(minutes[0], last + 1)
        tickets = sink.tickets(minutes[0] * 60.0)
    except StoreError as exc:
        log.warning("cohortroute admin: signals unavailable: %s", exc)
        text = f"The signals cannot be read now: {exc}. Reload to retry."
        return ctx.render("Signals", tag("p", text, role="alert"), status=503)
    charts = Html("") if rows or tickets else tag("p", f"No signals in the last {window} minutes.")
    # The current minute is still counting: the table shows the last complete one.
    complete = f"{minute_label(minutes[-2])} UTC"
    for metric, lines in series(rows, tickets, minutes).items():
        latest = [(v, _fmt(vals[-2])) for v, vals in lines.items()]
        caption = f"{metric} in the last complete minute ({complete})"
        charts += tag(
            "figure",
            line_chart(f"{metric}, last {window} minutes", minutes, lines)
            + tag("figcaption", table(caption, ["Version", f"Minute {complete}"], latest)),
        )
    choose = form(
        ctx.base + "/signals",
        field("minutes", "Minutes shown", window, kind="number", min="5", max="1440")
        + " "
        + button("Show"),
        None,
        method="get",
    )
    recent = table(
        "Latest tickets",
        ["When", "Tenant", "Version", "Severity", "Text"],
        [
            (
                when(t.at),
                link(f"{ctx.base}/tenants/{t.tenant}", t.tenant),
                t.version,
                t.severity,
                t.text,
            )
            for t in sorted(tickets, key=lambda t: -t.at)[:20]
        ],
    )
    body = Html(choose + charts + _guard(ctx, sink, now) + tag("h2", "Tickets") + recent)
    return ctx.render("Signals", body, refresh=60)


def _gate(gate: dict[str, Any]) -> str:
    if gate["met"]:
        return "met"
    text = f"{gate['have_expected']} of {gate['needed_expected']} expected events"
    more = gate.get("more_requests")
    if more is not None:
        return f"{text} ({more:,} more requests)"
    reason = gate.get("reason")
    return f"{text} (more requests needed: {reason})" if reason else text


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _guard(ctx: Ctx, sink: Any, now: float) -> Html:
    """The verdict, the promotion gate and the worst tenants, from the report module."""
    from ..guard import GuardConfig, assess
    from ..report import build

    assessment = assess(ctx.store, sink, GuardConfig(), now)
    if assessment is None:
        return Html(tag("h2", "Guard") + tag("p", "No rollout to judge."))
    report = build(assessment, ctx.store.history(None, 5000), limit=WORST)
    gate = report["gate"]
    pinned = report["evidence"]["pinned"]
    facts = definitions(
        {
            "Verdict": report["verdict"],
            "State": report["state"],
            "Promotion gate": _gate(gate),
            "Left out": _left_out(pinned),
        }
    )
    actions = table(
        "The guard's actions in this rollout (newest first)",
        ["When", "Action", "Tenant", "Why"],
        [
            (
                when(x["at"]),
                x["action"],
                link(f"{ctx.base}/tenants/{x['tenant']}", x["tenant"]) if x["tenant"] else "-",
                x["line"] or "",
            )
            for x in reversed(report["actions"][-ACTIONS:])
        ],
    )
    if not report["actions"]:
        actions = Html(tag("p", "The guard has not acted in this rollout."))
    worst = Html("")
    for version in report["versions"]:
        worst += table(
            f"Worst tenants on {version['version']} ({version['role']}) against their baseline",
            [
                "Tenant",
                "Requests",
                "Errors",
                "Error ratio",
                "Slow ratio",
                "p95 (s)",
                "Tickets",
                "p",
            ],
            [
                (
                    link(f"{ctx.base}/tenants/{t['tenant']}", t["tenant"]),
                    t["requests"],
                    t["errors"],
                    _fmt(t["error_ratio"]),
                    _fmt(t["slow_ratio"]),
                    _fmt(t["p95"]),
                    t["tickets"],
                    _fmt(t["evidence"]["p"]),
                )
                for t in version["tenants"]
            ],
        )
    return Html(tag("h2", "Guard") + facts + actions + worst)


def _left_out(pinned: list[str]) -> str:
    """The tenants on the candidate by a pin or tag rule, which the guard neither judges nor
    moves (the first few named)."""
    if not pinned:
        return "none (every tenant on the candidate is there by the rollout)"
    return (
        f"{len(pinned)} tenant{'s' if len(pinned) != 1 else ''} on the candidate by a pin or "
        f"tag rule, neither judged nor moved: {listed(pinned, LEFT_OUT_SHOWN)}"
    )

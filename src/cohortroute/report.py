"""What the new version does to each customer: the verdict first, then per version and tenant.

Sans-IO: :func:`build` turns an :class:`~cohortroute.guard.assess.Assessment` and the guard's
audit entries into the JSON-ready report; :func:`render` turns that into text. The first line
is the verdict (``rolled back: 5xx 8.1x own baseline, 21 vs 2.7 expected over 10 tenants; still
6.0x without acme; p = 0.0004``); then the promotion gate, the guard's actions, and per version
its tenants, worst first: requests, server errors and slow requests against the tenant's own
baseline, p95 (from the merged histogram), tickets, the evidence and the action taken.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .guard import stats
from .guard.assess import Assessment, TenantSignals
from .guard.evidence import METRICS
from .guard.explain import p_text, state, times, verdict_line
from .policy import AuditEntry, format_percent
from .signals.model import HISTOGRAM_BOUNDS

log = logging.getLogger(__name__)

NO_ROLLOUT = "no rollout: nothing to report (start one with `cohortroute rollout start VERSION`)"


def p95(histogram: Sequence[int]) -> float | None:
    """The upper bound of the bucket holding the 95th percentile, in seconds (``inf`` past the
    last bound); None without requests."""
    total = sum(histogram)
    if total <= 0:
        return None
    running = 0
    for i, count in enumerate(histogram):
        running += count
        if running >= 0.95 * total:
            return HISTOGRAM_BOUNDS[i] if i < len(HISTOGRAM_BOUNDS) else math.inf
    return math.inf


def _num(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isinf(value) or math.isnan(value):
        return None
    return round(value, digits)


def _ratio(observed: float, expected: float) -> float | None:
    if expected <= 0:
        return None
    return round(observed / expected, 3)


def guard_actions(history: Iterable[AuditEntry], since: float) -> list[dict[str, Any]]:
    """The guard's audited actions since ``since``, oldest first."""
    out = []
    for e in history:
        if e.actor == "guard" and e.action.startswith("guard-") and e.at >= since:
            if e.action.startswith("guard-lease"):
                continue
            line = e.after.get("line") if isinstance(e.after, dict) else None
            out.append({"at": e.at, "action": e.action, "tenant": e.tenant, "line": line})
    return sorted(out, key=lambda a: a["at"])


def build(a: Assessment, history: Iterable[AuditEntry], limit: int = 20) -> dict[str, Any]:
    """The report as JSON-ready data (the ``report --json`` output)."""
    rollout = a.subject.rollout
    actions = guard_actions(history, rollout.started_at)
    acted = {x["tenant"]: x["action"] for x in actions if x["tenant"]}
    versions = []
    for version in (rollout.candidate, a.subject.stable):
        tenants = [
            _tenant_row(a, version, name, signals, acted.get(name))
            for name, signals in a.signals.get(version, {}).items()
        ]
        tenants.sort(key=lambda t: (-t["evidence"]["score"], -(t["requests"] or 0), t["tenant"]))
        versions.append(_version_row(a, version, tenants, limit))
    return {
        "verdict": verdict_line(a),
        "state": state(a),
        "rollout": {
            "candidate": rollout.candidate,
            "stable": a.subject.stable,
            "percent": float(format_percent(rollout.at(a.now).percent).rstrip("%")),
            "started_at": rollout.started_at,
            "halted": rollout.halted,
            "halt_reason": rollout.halt_reason if rollout.halted else None,
            "ended": a.subject.ended,
            "ended_at": a.subject.ended_at,
        },
        "evidence": a.verdict.to_json(),
        "gate": a.verdict.gate.to_json(),
        "actions": actions,
        "versions": versions,
    }


def _tenant_row(
    a: Assessment, version: str, name: str, s: TenantSignals, action: str | None
) -> dict[str, Any]:
    candidate = version == a.subject.rollout.candidate
    ev = a.evidence.tenants.get(name) if candidate else None
    rates = a.evidence.baselines.rates(name)
    if ev is not None:
        expected = [t.expected for t in ev.tallies]
        scaled = [a.evidence.scaled(name, i) for i in range(len(METRICS))]
        logs = [stats.log_mixture(o, e) if o > e else 0.0 for o, e, _ in scaled]
    else:
        expected = [s.requests * r for r in rates]
        logs = [0.0] * len(METRICS)
    worst = max(range(len(METRICS)), key=lambda i: logs[i])
    return {
        "tenant": name,
        "requests": s.requests,
        "errors": s.errors,
        "expected_errors": round(expected[0], 3),
        "error_ratio": _ratio(s.errors, expected[0]),
        "slow": s.slow,
        "expected_slow": round(expected[1], 3),
        "slow_ratio": _ratio(s.slow, expected[1]),
        "p95": _num(p95(s.histogram)),
        "tickets": s.tickets,
        "evidence": {
            "metric": METRICS[worst],
            "p": stats.p_value(logs[worst]),
            "score": round(logs[worst], 3),
        },
        "held": name in a.held,
        "action": action,
    }


def _version_row(
    a: Assessment, version: str, tenants: list[dict[str, Any]], limit: int
) -> dict[str, Any]:
    merged = [0] * (len(HISTOGRAM_BOUNDS) + 1)
    for s in a.signals.get(version, {}).values():
        for i, c in enumerate(s.histogram):
            merged[i] += c
    errors = sum(t["errors"] for t in tenants)
    slow = sum(t["slow"] for t in tenants)
    return {
        "version": version,
        "role": "candidate" if version == a.subject.rollout.candidate else "stable",
        "tenant_count": len(tenants),
        "requests": sum(t["requests"] for t in tenants),
        "errors": errors,
        "error_ratio": _ratio(errors, sum(t["expected_errors"] for t in tenants)),
        "slow": slow,
        "slow_ratio": _ratio(slow, sum(t["expected_slow"] for t in tenants)),
        "p95": _num(p95(merged)),
        "tickets": sum(t["tickets"] for t in tenants),
        "tenants": tenants[:limit],
    }


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else times(ratio)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


_HEAD = (
    "TENANT",
    "REQUESTS",
    "5XX",
    "EXPECTED",
    "RATIO",
    "SLOW",
    "RATIO",
    "P95",
    "TICKETS",
    "P",
    "ACTION",
)


def render(report: dict[str, Any]) -> list[str]:
    """The report as text lines, verdict first."""
    r = report["rollout"]
    lines = [report["verdict"]]
    ended = f", {r['ended']} {_when(r['ended_at'])}" if r["ended"] else ""
    lines.append(
        f"rollout: {r['candidate']} (candidate) against {r['stable']} (stable), "
        f"{r['percent']:g}%, started {_when(r['started_at'])}{ended}"
        + (
            f" -- halted{': ' + r['halt_reason'] if r['halt_reason'] else ''}"
            if r["halted"] and not r["ended"]
            else ""
        )
    )
    gate = report["gate"]
    if not r["ended"]:
        if gate["met"]:
            lines.append(
                f"promotion gate: met (enough traffic to detect a {gate['theta']:g}x regression)"
            )
        else:
            more = gate["more_requests"]
            why = gate.get("reason") if more is None else None
            lines.append(
                f"promotion gate: not met -- needs {'more' if more is None else f'~{more:,} more'} "
                f"requests on the candidate to detect a {gate['theta']:g}x regression "
                f"({gate['have_expected']:g} of {gate['needed_expected']:g} expected errors)"
                + (f"; how many more cannot be estimated: {why}" if why else "")
            )
    for action in report["actions"]:
        lines.append(f"guard {_when(action['at'])}: {action['action']}: {action['line'] or ''}")
    for v in report["versions"]:
        lines.append("")
        lines.append(
            f"{v['version']} ({v['role']}): {v['tenant_count']} tenant(s), {v['requests']:,} "
            f"requests, 5xx {v['errors']} ({_x(v['error_ratio'])} baseline), slow {v['slow']} "
            f"({_x(v['slow_ratio'])}), p95 {_seconds(v['p95'])}, {v['tickets']} ticket(s)"
        )
        if not v["tenants"]:
            continue
        rows = [_HEAD] + [
            (
                t["tenant"],
                f"{t['requests']:,}",
                str(t["errors"]),
                f"{t['expected_errors']:.1f}",
                _x(t["error_ratio"]),
                str(t["slow"]),
                _x(t["slow_ratio"]),
                _seconds(t["p95"]),
                str(t["tickets"]),
                p_text(t["evidence"]["p"]),
                t["action"] or ("held" if t["held"] else "-"),
            )
            for t in v["tenants"]
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_HEAD))]
        for row in rows:
            cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
            lines.append("  " + "  ".join(cells).rstrip())
        if v["tenant_count"] > len(v["tenants"]):
            lines.append(f"  ... and {v['tenant_count'] - len(v['tenants'])} more (--limit)")
    return lines

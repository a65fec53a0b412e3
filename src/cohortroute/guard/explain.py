"""The guard's sentences: the verdict line the report starts with, and one line per tenant.

For example ``rolled back: 5xx 8.1x own baseline, 21 vs 2.7 expected over 10 tenants; still 6.0x
without acme; p = 0.0004``. The same lines go into the audit log with the evidence.
"""

from __future__ import annotations

import logging
import math

from . import stats
from .assess import Assessment
from .evidence import METRICS
from .verdict import MetricVerdict

log = logging.getLogger(__name__)


def times(ratio: float) -> str:
    """``8.1x`` (``inf`` when nothing was expected)."""
    return "new (none expected)" if math.isinf(ratio) else f"{ratio:.1f}x"


def p_text(p: float) -> str:
    """``0.0004``, ``< 1e-12`` or ``1``."""
    if p < 1e-12:
        return "< 1e-12"
    return f"{p:.2g}" if p < 1 else "1"


def state(a: Assessment) -> str:
    """What has been done or is being done: ``rolled back``, ``halted``, ``holding``..."""
    if a.subject.ended is not None:
        return a.subject.ended
    kind = a.verdict.kind
    if kind == "rollback":
        return "rolled back"
    if kind == "halt" or a.subject.rollout.halted:
        return "halted"
    return "holding"


def metric_clause(m: MetricVerdict) -> str:
    """``5xx 8.1x own baseline, 21 vs 2.7 expected over 10 tenants; still 6.0x without acme``."""
    text = (
        f"{m.metric} {times(m.ratio)} own baseline, {m.observed} vs {m.expected:.1f} expected "
        f"over {m.tenants} tenant{'s' if m.tenants != 1 else ''}"
    )
    if m.without is not None and m.tenants > 1:
        text += f"; still {times(m.ratio_without)} without {m.without}"
    return text


def verdict_line(a: Assessment) -> str:
    """The first line of the report, and the reason the guard gives when it acts."""
    v = a.verdict
    prefix = state(a)
    candidate = a.subject.rollout.candidate
    if v.kind == "no-traffic" and a.subject.ended is None:
        return f"{prefix}: no traffic on {candidate} yet, nothing to judge (never a failure)"
    shown = v.trigger or max(v.metrics, key=lambda m: m.log_lambda, default=None)
    if shown is None:
        return f"{prefix}: no metric watched"
    line = f"{prefix}: {metric_clause(shown)}; p = {p_text(shown.p)}"
    if v.breakers:
        line += f"; sent back: {', '.join(sorted({t for t, _, _ in v.breakers}))}"
    if a.subject.ended is None and v.trigger is None and not v.gate.met:
        more = v.gate.more_requests
        line += (
            f"; promotion gate: needs {'more' if more is None else f'~{more:,} more'} requests "
            f"to detect a {v.gate.theta:g}x regression"
        )
    return line


def tenant_line(a: Assessment, tenant: str, metric: str) -> str:
    """``acme: 5xx 40.0x own baseline, 120 vs 3.0 expected; p = 1e-06``."""
    i = METRICS.index(metric)
    tally = a.evidence.tenants[tenant].tallies[i]
    o, e, _ = a.evidence.scaled(tenant, i)
    ratio = math.inf if tally.expected <= 0 else tally.raw / tally.expected
    p = stats.p_value(stats.log_mixture(o, e))
    return (
        f"{tenant}: {metric} {times(ratio)} own baseline, {tally.raw} vs {tally.expected:.1f} "
        f"expected; p = {p_text(p)}"
    )

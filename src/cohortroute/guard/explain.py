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

ACTOR = "guard"
"""The guard's name in the audit log."""


BLIND = (
    "no signals recorded since the rollout started: routers need signals=True; "
    "the plan is not gated"
)
"""What the guard says (once per rollout, in the audit log, and in every verdict line) when no
router records signals: it sees nothing, so it neither judges nor holds a timed plan."""

NEUTRAL_P = 0.5
"""Above this p-value on every metric the verdict line says ``no regression`` instead of
quoting the least unremarkable metric."""


def times(ratio: float) -> str:
    """``8.1x`` (``above none expected`` when nothing was expected)."""
    return "above none expected" if math.isinf(ratio) else f"{ratio:.1f}x"


def p_clause(p: float) -> str:
    """``p = 0.0004``, or ``p < 1e-12`` (not ``p = < 1e-12``)."""
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


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
        f"{m.metric} {_against(m.ratio)}, {m.observed} vs {m.expected:.1f} expected "
        f"over {m.tenants} tenant{'s' if m.tenants != 1 else ''}"
    )
    if m.without is not None and m.tenants > 1:
        text += f"; still {times(m.ratio_without)} without {m.without}"
    return text


def _against(ratio: float) -> str:
    """``8.1x own baseline``, or ``above its own baseline of none`` when nothing was expected."""
    if math.isinf(ratio):
        return "above an own baseline of none"
    return f"{ratio:.1f}x own baseline"


def verdict_line(a: Assessment) -> str:
    """The first line of the report, and the reason the guard gives when it acts."""
    v = a.verdict
    prefix = state(a)
    by = a.subject.ended_by
    if a.subject.ended is not None and by not in (None, ACTOR):
        prefix += f" by {by}"  # the plain "rolled back" is the guard's own word
    candidate = a.subject.rollout.candidate
    if a.blind:
        return f"{prefix}: {BLIND}"
    if v.kind == "no-traffic" and a.subject.ended is None:
        return f"{prefix}: no traffic on {candidate} yet, nothing to judge (never a failure)"
    shown = v.trigger or max(v.metrics, key=lambda m: m.log_lambda, default=None)
    if shown is None:
        return f"{prefix}: no metric watched"
    if v.trigger is None and not v.breakers and all(m.p > NEUTRAL_P for m in v.metrics):
        line = f"{prefix}: no regression on {candidate}: {_neutral(v.metrics)}"
    else:
        line = f"{prefix}: {metric_clause(shown)}; {p_clause(shown.p)}"
    if v.breakers:
        line += f"; sent back: {', '.join(sorted({t for t, _, _ in v.breakers}))}"
    if a.subject.ended is None and v.trigger is None and not v.gate.met:
        line += (
            f"; promotion gate: needs {v.gate.more_text} to detect a {v.gate.theta:g}x regression"
        )
    if v.no_baseline and a.subject.ended is None:
        line += f"; {no_baseline_text(len(v.no_baseline))}"
    return line


def no_baseline_text(count: int) -> str:
    """``no baseline for 3 tenants: the guard cannot act on them yet``."""
    return (
        f"no baseline for {count} tenant{'s' if count != 1 else ''}: the guard cannot act on "
        f"{'them' if count != 1 else 'it'} yet"
    )


def _neutral(metrics: tuple[MetricVerdict, ...]) -> str:
    """``5xx 0.9x, slow 1.0x own baseline over 10 tenants``: the metrics with something expected."""
    parts = [f"{m.metric} {m.ratio:.1f}x" for m in metrics if m.expected > 0]
    tenants = max((m.tenants for m in metrics), default=0)
    if not parts:
        return f"nothing expected yet over {tenants} tenant{'s' if tenants != 1 else ''}"
    return f"{', '.join(parts)} own baseline over {tenants} tenant{'s' if tenants != 1 else ''}"


def tenant_line(a: Assessment, tenant: str, metric: str) -> str:
    """``acme: 5xx 40.0x own baseline, 120 vs 3.0 expected; p = 1e-06``."""
    i = METRICS.index(metric)
    tally = a.evidence.tenants[tenant].tallies[i]
    o, e, _ = a.evidence.scaled(tenant, i)
    ratio = math.inf if tally.expected <= 0 else tally.raw / tally.expected
    p = stats.p_value(stats.log_mixture(o, e))
    return (
        f"{tenant}: {metric} {_against(ratio)}, {tally.raw} vs {tally.expected:.1f} "
        f"expected; {p_clause(p)}"
    )

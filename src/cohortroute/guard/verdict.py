"""The guard's decision from the evidence: hold, tenant breakers, cohort halt or rollback, gate.

Pure: :func:`judge` reads an :class:`~.evidence.Evidence` and a :class:`GuardConfig` and returns
a :class:`Verdict`; acting on it is :mod:`.actions`' job. The rules, in order:

* no candidate traffic -> hold, never fail;
* a tenant whose own evidence passes the breaker (``Lambda_i >= 1e4`` with ``O_i > E_i``), and
  still passes the metric's threshold ``1/alpha_m`` without its worst 15-minute window (one
  burst is not a broken tenant), goes back to the stable version and the rollout is paused;
* a metric whose cohort evidence passes Ville's bound (``Lambda >= 1/alpha_m``, ``O > E``), and
  still passes without the tenant with the largest excess, rolls the rollout back (or halts it,
  per metric);
* otherwise hold; the promotion gate says whether the step has seen enough traffic to have
  caught a 3x regression of server errors, and how many more requests it needs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import stats
from .evidence import METRICS, Evidence

log = logging.getLogger(__name__)

Action = Literal["rollback", "halt"]

_LOG_TOP = math.log(max(stats.THETAS))


@dataclass(frozen=True)
class GuardConfig:
    """How the guard decides.

    :param alpha: the false-alarm budget of one rollout, split evenly across ``metrics``.
    :param actions: per metric, what a cohort regression does: ``rollback`` (default) or
        ``halt``.
    :param breaker: the likelihood ratio at which one tenant alone is sent back.
    :param gate_theta: the regression the promotion gate wants to be able to detect.
    :param baseline_minutes: how far back before the rollout a tenant's stable history counts.
    """

    alpha: float = 0.01
    metrics: tuple[str, ...] = METRICS
    actions: Mapping[str, Action] = field(default_factory=dict)
    breaker: float = 1e4
    gate_theta: float = 3.0
    baseline_minutes: int = 24 * 60
    shrink: float = stats.SHRINK

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1, like 0.01")
        unknown = set(self.metrics) - set(METRICS) | set(self.actions) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}: use {', '.join(METRICS)}")
        bad = {a for a in self.actions.values() if a not in ("rollback", "halt")}
        if bad:
            raise ValueError(f"unknown action(s) {sorted(bad)}: use rollback or halt")

    @property
    def metric_alpha(self) -> float:
        """``alpha`` per metric (Bonferroni over the metrics watched)."""
        return self.alpha / len(self.metrics)

    def action(self, metric: str) -> Action:
        """What a cohort regression on ``metric`` does."""
        return self.actions.get(metric, "rollback")


@dataclass(frozen=True)
class MetricVerdict:
    """The cohort's evidence on one metric."""

    metric: str
    observed: int
    expected: float
    log_lambda: float
    tenants: int
    without: str | None  # the tenant with the largest excess
    log_lambda_without: float
    ratio_without: float
    regressed: bool

    @property
    def ratio(self) -> float:
        """Observed over expected (``inf`` when nothing was expected and something came)."""
        return _ratio(self.observed, self.expected)

    @property
    def p(self) -> float:
        """The always-valid p-value."""
        return stats.p_value(self.log_lambda)

    def to_json(self) -> dict[str, Any]:
        """The ``evidence`` object of the report and the audit log."""
        return {
            "metric": self.metric,
            "observed": self.observed,
            "expected": round(self.expected, 3),
            "ratio": _finite(self.ratio),
            "lambda": _finite(math.exp(min(self.log_lambda, 700))),
            "p": self.p,
            "tenants": self.tenants,
            "without": self.without,
            "ratio_without": _finite(self.ratio_without),
            "p_without": stats.p_value(self.log_lambda_without),
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class Gate:
    """The promotion gate: has the step seen enough to catch a ``theta``-fold regression?"""

    theta: float
    needed: float  # E_min, in expected baseline errors (after inflation)
    have: float
    more_requests: int | None  # None when it cannot be estimated (``reason`` says why)
    reachable: float | None = None  # the most the current tenants can reach (short baselines)
    reason: str | None = None  # why ``more_requests`` is None

    @property
    def met(self) -> bool:
        """True once the evidence reaches ``E_min``."""
        return self.have >= self.needed

    def to_json(self) -> dict[str, Any]:
        """The ``gate`` object of the report."""
        return {
            "theta": self.theta,
            "met": self.met,
            "needed_expected": round(self.needed, 3),
            "have_expected": round(self.have, 3),
            "more_requests": self.more_requests,
            "reachable_expected": None if self.reachable is None else round(self.reachable, 3),
            "reason": self.reason,
        }

    @property
    def more_text(self) -> str:
        """``~1,234 more requests`` or why the number cannot be estimated."""
        if self.more_requests is not None:
            return f"~{self.more_requests:,} more requests"
        return f"an unknown number of more requests ({self.reason or 'no rate to go by'})"


@dataclass(frozen=True)
class Verdict:
    """What the guard concludes now."""

    kind: Literal["hold", "no-traffic", "rollback", "halt"]
    metrics: tuple[MetricVerdict, ...]
    breakers: tuple[tuple[str, str, float], ...]  # (tenant, metric, log Lambda_i)
    gate: Gate
    trigger: MetricVerdict | None = None
    no_baseline: tuple[str, ...] = ()  # judged tenants without stable history before the start
    pinned: tuple[str, ...] = ()  # on the candidate by a pin or tag rule: left out, never moved

    def to_json(self) -> dict[str, Any]:
        """The verdict as the report and the audit log store it."""
        return {
            "kind": self.kind,
            "no_baseline": list(self.no_baseline),
            "pinned": list(self.pinned),
            "trigger": None if self.trigger is None else self.trigger.metric,
            "metrics": [m.to_json() for m in self.metrics],
            "breakers": [
                {"tenant": t, "metric": m, "lambda": _finite(math.exp(min(x, 700)))}
                for t, m, x in self.breakers
            ],
            "gate": self.gate.to_json(),
        }


def judge(evidence: Evidence, config: GuardConfig, exclude: Collection[str] = ()) -> Verdict:
    """Decide from ``evidence``; tenants in ``exclude`` (already sent back) are left out."""
    names = [t for t in evidence.tenants if t not in exclude]
    threshold = math.log(1.0 / config.metric_alpha)
    breaker = math.log(config.breaker)
    verdicts = []
    breakers: list[tuple[str, str, float]] = []
    for metric in config.metrics:
        i = METRICS.index(metric)
        scaled = {t: evidence.scaled(t, i) for t in names}
        for t in names:
            o, e, _ = scaled[t]
            # log Lambda_i <= O ln(max theta): most tenants cannot reach the breaker at all
            if o > e and o * _LOG_TOP >= breaker:
                x = stats.log_mixture(o, e)
                if x >= breaker and _beyond_a_burst(evidence, t, i, threshold):
                    breakers.append((t, metric, x))
        verdicts.append(_cohort(evidence, metric, i, names, scaled, threshold))
    gate = _gate(evidence, config, names)
    traffic = sum(evidence.tenants[t].requests for t in names)
    trigger = next((v for v in verdicts if v.regressed), None)
    if trigger is not None:
        kind: Literal["hold", "no-traffic", "rollback", "halt"] = config.action(trigger.metric)
    else:
        kind = "hold" if traffic else "no-traffic"
    no_baseline = tuple(sorted(t for t in names if not evidence.baselines.requests(t)))
    return Verdict(kind, tuple(verdicts), tuple(breakers), gate, trigger, no_baseline)


def _beyond_a_burst(evidence: Evidence, tenant: str, i: int, threshold: float) -> bool:
    """Without its worst burst window, the tenant's evidence still passes the metric's own
    threshold (``1/alpha_m``): what made the breaker is more than one burst."""
    o, e = evidence.without_burst(tenant, i)
    return o > e and stats.log_mixture(o, e) >= threshold


def _cohort(
    evidence: Evidence,
    metric: str,
    i: int,
    names: list[str],
    scaled: Mapping[str, tuple[float, float, float]],
    threshold: float,
) -> MetricVerdict:
    o_all = sum(s[0] for s in scaled.values())
    e_all = sum(s[1] for s in scaled.values())
    x = stats.log_mixture(o_all, e_all)
    raw = sum(evidence.tenants[t].tallies[i].raw for t in names)
    expected = sum(evidence.tenants[t].tallies[i].expected for t in names)
    worst = max(names, key=lambda t: scaled[t][0] - scaled[t][1], default=None)
    if worst is None:
        x_without, ratio_without = 0.0, 0.0
    else:
        o_w, e_w, _ = scaled[worst]
        x_without = stats.log_mixture(o_all - o_w, e_all - e_w)
        tally = evidence.tenants[worst].tallies[i]
        ratio_without = _ratio(raw - tally.raw, expected - tally.expected)
    regressed = o_all > e_all and x >= threshold and x_without >= threshold
    return MetricVerdict(
        metric, raw, expected, x, len(names), worst, x_without, ratio_without, regressed
    )


def _gate(evidence: Evidence, config: GuardConfig, names: list[str]) -> Gate:
    """E_min for ``gate_theta`` on server errors, against the inflated expected count so far.

    A tenant's weighed expectation ``E_i / f_i`` with ``f_i = 1 + n_i / N_pre_i`` levels off at
    ``r_i * N_pre_i`` however long it stays: with short baselines the gate may be out of reach,
    and then no number of more requests is given, only why. Otherwise the estimate is the
    traffic, in the current mix of tenants at their baseline rates, that reaches ``E_min``.
    """
    needed = stats.min_expected(config.gate_theta, config.metric_alpha)
    i = METRICS.index("5xx")
    have = sum(evidence.scaled(t, i)[1] for t in names)
    parts = [
        (
            evidence.tenants[t].tallies[i].expected,
            evidence.tenants[t].requests,
            max(evidence.baselines.requests(t), 1),
            evidence.baselines.rates(t)[i],
        )
        for t in names
        if evidence.tenants[t].requests > 0
    ]
    requests = sum(p[1] for p in parts)
    if have >= needed:
        return Gate(config.gate_theta, needed, have, 0)
    if not parts or have <= 0:
        rate = evidence.baselines.global_rates[i]
        if rate <= 0:
            return Gate(config.gate_theta, needed, have, None, reason="no baseline errors")
        return Gate(config.gate_theta, needed, have, math.ceil(needed / rate))
    # the most these tenants can ever weigh: E_i / f_i -> r_i * N_pre_i (g_m >= 1 only adds)
    ceiling = sum(rate * pre for _, _, pre, rate in parts)
    if ceiling < needed * 1.01:
        reason = (
            f"too little baseline: the candidate tenants' stable history caps the evidence at "
            f"{ceiling:.2f} expected errors however long the step lasts"
        )
        return Gate(config.gate_theta, needed, have, None, ceiling, reason)

    def weighed(x: float) -> float:  # the evidence at x times the traffic so far
        return sum((e + (x - 1.0) * n * rate) / (1.0 + x * n / pre) for e, n, pre, rate in parts)

    low, high = 1.0, 2.0
    while weighed(high) < needed:
        low, high = high, high * 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if weighed(mid) < needed else (low, mid)
    return Gate(config.gate_theta, needed, have, math.ceil((high - 1.0) * requests), ceiling)


def _ratio(observed: float, expected: float) -> float:
    if expected <= 0:
        return math.inf if observed > 0 else 1.0
    return observed / expected


def _finite(value: float) -> float | None:
    """JSON has no infinity: ``None`` stands for it."""
    return None if math.isinf(value) or math.isnan(value) else round(value, 6)

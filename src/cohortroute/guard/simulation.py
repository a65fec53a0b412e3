"""A seeded simulation of rollouts, to measure the guard's false alarms and detection times.

The model: tenants with lognormal traffic (median 5 requests a minute), Gamma-distributed
baseline error rates around 0.2 %, a share of slow requests and a trickle of tickets each; one
day of stable history per tenant; random per-tenant bursts (10x errors for 5 minutes, on any
version) and, in some runs, a 15-minute global incident at 5x. The rollout moves a random order
of tenants to the candidate in stages (2, 10, 50, 100 tenants, 60 minutes each) and the guard
judges every minute, exactly as the evaluator does, through :class:`~.evidence.Evidence` and
:func:`~.verdict.judge`. ``benchmarks/guard_simulation.py`` runs the full study; the tests run
small seeded versions.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field

from .evidence import Baselines, Counts, Evidence, TenantHistory
from .verdict import GuardConfig, judge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scenario:
    """One simulated world and rollout.

    ``regression`` multiplies every candidate tenant's error rate; ``broken`` gives the first
    candidate tenant alone an error rate of ``broken_rate`` (an incompatible tenant).
    """

    tenants: int = 200
    stages: tuple[int, ...] = (2, 10, 50, 100)
    stage_minutes: int = 60
    history_minutes: int = 24 * 60
    regression: float = 1.0
    broken: bool = False
    broken_rate: float = 0.2
    incident_chance: float = 0.3
    incident_minutes: int = 15
    incident_factor: float = 5.0
    burst_chance: float = 1 / 2000
    burst_minutes: int = 5
    burst_factor: float = 10.0
    median_traffic: float = 5.0
    traffic_sigma: float = 1.2
    error_rate: float = 0.002
    ticket_rate: float = 2e-5


@dataclass
class Outcome:
    """What the guard did in one run: the minute of its first cohort action and its breakers."""

    action: str | None = None  # rollback / halt
    action_minute: int | None = None
    breakers: dict[str, int] = field(default_factory=dict)  # tenant -> minute sent back
    broken_tenant: str | None = None

    @property
    def false_alarm(self) -> bool:
        """Any halt, rollback or tenant sent back: all wrong when nothing regressed."""
        return self.action is not None or bool(self.breakers)


def poisson(lam: float, rnd: random.Random) -> int:
    """A Poisson draw: inversion for small means, the normal approximation for large ones."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rnd.gauss(lam, math.sqrt(lam))))
    u = rnd.random()
    term = math.exp(-lam)
    k, cdf = 0, term
    while u > cdf and term > 0:
        k += 1
        term *= lam / k
        cdf += term
    return k


@dataclass
class _Tenant:
    name: str
    traffic: float
    error: float
    slow: float
    burst_until: int = -1


def simulate(scenario: Scenario, seed: int, config: GuardConfig | None = None) -> Outcome:
    """Run one seeded rollout and return what the guard did."""
    rnd = random.Random(seed)
    config = config or GuardConfig()
    s = scenario
    people = [
        _Tenant(
            f"t{i}",
            s.median_traffic * math.exp(rnd.gauss(0.0, s.traffic_sigma)),
            rnd.gammavariate(2.0, s.error_rate / 2.0),
            rnd.uniform(0.01, 0.05),
        )
        for i in range(s.tenants)
    ]
    history = {}
    for t in people:
        n = poisson(t.traffic * s.history_minutes, rnd)
        counts = (
            poisson(n * t.error, rnd),
            poisson(n * t.slow, rnd),
            poisson(n * s.ticket_rate, rnd),
        )
        history[t.name] = TenantHistory(n, counts)
    evidence = Evidence(Baselines(history, k=config.shrink))
    order = people[:]
    rnd.shuffle(order)
    total = s.stage_minutes * len(s.stages)
    incident = rnd.randrange(total) if rnd.random() < s.incident_chance else None
    outcome = Outcome(broken_tenant=order[0].name if s.broken else None)
    sent_back: set[str] = set()
    for minute in range(total):
        on = {t.name for t in order[: s.stages[min(minute // s.stage_minutes, len(s.stages) - 1)]]}
        on -= sent_back
        global_factor = (
            s.incident_factor
            if incident is not None and incident <= minute < incident + s.incident_minutes
            else 1.0
        )
        stable: dict[str, tuple[int, Counts]] = {}
        candidate: dict[str, tuple[int, Counts]] = {}
        for t in people:
            if t.burst_until < minute and rnd.random() < s.burst_chance:
                t.burst_until = minute + s.burst_minutes - 1
            factor = global_factor * (s.burst_factor if t.burst_until >= minute else 1.0)
            error = t.error
            if t.name in on:
                error = s.broken_rate if t.name == outcome.broken_tenant else error * s.regression
            n = poisson(t.traffic, rnd)
            row = (
                n,
                (
                    poisson(n * min(1.0, error * factor), rnd),
                    poisson(n * t.slow, rnd),
                    poisson(n * s.ticket_rate, rnd),
                ),
            )
            (candidate if t.name in on else stable)[t.name] = row
        evidence.add_minute(minute, stable, candidate)
        verdict = judge(evidence, config, exclude=sent_back)
        for tenant, _, _ in verdict.breakers:
            if tenant not in sent_back:
                sent_back.add(tenant)
                outcome.breakers[tenant] = minute
        if verdict.kind in ("rollback", "halt"):
            outcome.action, outcome.action_minute = verdict.kind, minute
            break
    return outcome

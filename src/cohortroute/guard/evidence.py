"""The evidence against a candidate: per tenant and metric, observed versus expected counts.

:class:`Baselines` holds each tenant's history on the stable version (requests, events per
metric, its p95 duration bucket) and turns it into a shrunk rate. :class:`Evidence` is fed one
minute at a time, the stable cohort's counts and the candidate tenants' counts of that minute:
it corrects the candidate's expectations by the stable cohort's excess in the same minute, caps
each tenant-minute, and accumulates. The evaluator feeds it from the sink; the simulation feeds
it directly, so both exercise the same arithmetic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import stats

log = logging.getLogger(__name__)

BURST_MINUTES = 15
"""The longest burst the single-tenant breaker discounts (see :meth:`Evidence.without_burst`)."""

METRICS: tuple[str, ...] = ("5xx", "slow", "tickets")
"""What the guard counts: server errors, requests slower than the tenant's baseline p95 bucket,
and support tickets."""

Counts = tuple[int, ...]
"""One count per metric, in :data:`METRICS` order."""

MinuteCounts = Mapping[str, tuple[int, Counts]]
"""One minute of one cohort: tenant -> (requests, counts per metric)."""


@dataclass(frozen=True)
class TenantHistory:
    """A tenant's history on the stable version: requests and events per metric."""

    requests: int = 0
    events: Counts = (0, 0, 0)


@dataclass
class Baselines:
    """Every tenant's stable history and the global rates their own are shrunk towards."""

    tenants: dict[str, TenantHistory] = field(default_factory=dict)
    k: float = stats.SHRINK

    def __post_init__(self) -> None:
        total = sum(h.requests for h in self.tenants.values())
        events = [sum(h.events[i] for h in self.tenants.values()) for i in range(len(METRICS))]
        self.global_rates: tuple[float, ...] = tuple(e / total if total else 0.0 for e in events)
        self._rates: dict[str, tuple[float, ...]] = {}

    def rates(self, tenant: str) -> tuple[float, ...]:
        """The tenant's shrunk rate per metric (the global rate for a tenant without history)."""
        found = self._rates.get(tenant)
        if found is None:
            h = self.tenants.get(tenant, TenantHistory())
            found = tuple(
                stats.shrunk_rate(h.events[i], h.requests, self.global_rates[i], self.k)
                for i in range(len(METRICS))
            )
            self._rates[tenant] = found
        return found

    def requests(self, tenant: str) -> int:
        """How many stable requests the tenant's baseline rests on."""
        h = self.tenants.get(tenant)
        return 0 if h is None else h.requests


@dataclass
class Tally:
    """One tenant's evidence on one metric since it reached the candidate."""

    observed: float = 0.0  # capped per tenant-minute
    raw: int = 0  # uncapped, as the report shows it
    expected: float = 0.0
    minutes: list[tuple[int, float, float]] = field(default_factory=list)  # (minute, O, E)


@dataclass
class TenantEvidence:
    """One candidate tenant: its post-switch requests and a tally per metric."""

    tenant: str
    requests: int = 0
    tallies: list[Tally] = field(default_factory=lambda: [Tally() for _ in METRICS])
    first_minute: int | None = None
    last_minute: int | None = None


class Evidence:
    """Observed and expected counts per candidate tenant, fed one minute at a time."""

    def __init__(self, baselines: Baselines) -> None:
        self.baselines = baselines
        self.tenants: dict[str, TenantEvidence] = {}
        self.minutes = 0
        self.factors: list[tuple[float, ...]] = []  # g_m per minute, for the report

    def add_minute(self, minute: int, stable: MinuteCounts, candidate: MinuteCounts) -> None:
        """Account one minute: the stable cohort sets ``g_m``, the candidate tenants accrue."""
        metrics = range(len(METRICS))
        observed = [0.0] * len(METRICS)
        expected = [0.0] * len(METRICS)
        served = 0.0
        rates = self.baselines.rates
        for tenant, (requests, counts) in stable.items():
            if requests <= 0:
                continue
            served += requests
            rate = rates(tenant)
            for i in metrics:
                observed[i] += counts[i]
                expected[i] += requests * rate[i]
        g = tuple(stats.minute_factor(observed[i], expected[i]) for i in metrics)
        floor = tuple(stats.incident_rate(observed[i], expected[i], served) for i in metrics)
        self.factors.append(g)
        self.minutes += 1
        for tenant, (requests, counts) in candidate.items():
            ev = self.tenants.get(tenant)
            if ev is None:
                ev = self.tenants[tenant] = TenantEvidence(tenant, first_minute=minute)
            ev.last_minute = minute
            ev.requests += requests
            rate = rates(tenant)
            for i in metrics:
                tally = ev.tallies[i]
                e = requests * max(rate[i] * g[i], floor[i])
                o = min(counts[i], stats.minute_cap(e))
                tally.expected += e
                tally.raw += counts[i]
                tally.observed += o
                tally.minutes.append((minute, o, e))

    def scaled(self, tenant: str, metric: int) -> tuple[float, float, float]:
        """``(O/f, E/f, f)`` of one tenant on one metric: the counts the test weighs."""
        ev = self.tenants[tenant]
        f = stats.inflation(ev.requests, self.baselines.requests(tenant))
        tally = ev.tallies[metric]
        return tally.observed / f, tally.expected / f, f

    def without_burst(
        self, tenant: str, metric: int, width: int = BURST_MINUTES
    ) -> tuple[float, float]:
        """``(O/f, E/f)`` of one tenant without its worst ``width``-minute window.

        The window is the run of consecutive minutes with the largest excess ``O - E``: what a
        burst (a retry storm, a misbehaving client) leaves. Evidence that survives its removal
        is not one burst.
        """
        ev = self.tenants[tenant]
        f = stats.inflation(ev.requests, self.baselines.requests(tenant))
        tally = ev.tallies[metric]
        minutes = tally.minutes
        best = (0.0, 0.0, 0.0)  # (excess, O, E) of the worst window
        start = 0
        o_sum = e_sum = 0.0
        for minute, o, e in minutes:
            o_sum += o
            e_sum += e
            while minutes[start][0] <= minute - width:
                o_sum -= minutes[start][1]
                e_sum -= minutes[start][2]
                start += 1
            if o_sum - e_sum > best[0]:
                best = (o_sum - e_sum, o_sum, e_sum)
        return (tally.observed - best[1]) / f, (tally.expected - best[2]) / f

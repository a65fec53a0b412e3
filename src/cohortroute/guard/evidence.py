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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import stats

log = logging.getLogger(__name__)

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
        rates = self.baselines.rates
        for tenant, (requests, counts) in stable.items():
            if requests <= 0:
                continue
            rate = rates(tenant)
            for i in metrics:
                observed[i] += counts[i]
                expected[i] += requests * rate[i]
        g = tuple(stats.minute_factor(observed[i], expected[i]) for i in metrics)
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
                e = requests * rate[i] * g[i]
                tally.expected += e
                tally.raw += counts[i]
                tally.observed += min(counts[i], stats.minute_cap(e))

    def scaled(self, tenant: str, metric: int) -> tuple[float, float, float]:
        """``(O/f, E/f, f)`` of one tenant on one metric: the counts the test weighs."""
        ev = self.tenants[tenant]
        f = stats.inflation(ev.requests, self.baselines.requests(tenant))
        tally = ev.tallies[metric]
        return tally.observed / f, tally.expected / f, f


def minute_counts(items: Iterable[tuple[str, int, Counts]]) -> dict[str, tuple[int, Counts]]:
    """Sum ``(tenant, requests, counts)`` items into one minute's cohort counts."""
    out: dict[str, tuple[int, Counts]] = {}
    for tenant, requests, counts in items:
        known = out.get(tenant)
        if known is None:
            out[tenant] = (requests, counts)
        else:
            out[tenant] = (
                known[0] + requests,
                tuple(a + b for a, b in zip(known[1], counts, strict=True)),
            )
    return out

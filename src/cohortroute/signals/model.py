"""The data model of per-tenant signals: one aggregate row per (minute, tenant, version), tickets,
and the sink protocol every backend implements.

Routers flush :class:`SignalRow` deltas; a :class:`SignalSink` adds them commutatively, so rows
from every process and server sum to the same aggregate whatever the order. The guard, the
report and the exports read them back through the same protocol. A :class:`Ticket` is one
support ticket, attributed to the version its tenant was on when it was opened.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

HISTOGRAM_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""Upper bounds (seconds) of the duration buckets: OpenTelemetry's HTTP server boundaries.
A duration ``d`` falls in the first bucket whose bound is ``>= d``; the last bucket (index 14)
is the overflow."""

#: How many buckets a histogram has: one per bound, plus the overflow.
BUCKETS = len(HISTOGRAM_BOUNDS) + 1

#: The severities a ticket may have, least urgent first.
SEVERITIES = ("low", "normal", "high", "urgent")

#: The tenant requests are counted under once a router counts ``max_rows`` tenants in a minute
#: (never a valid tenant name: a DNS label has no underscore).
OVERFLOW_TENANT = "__other__"


@dataclass(frozen=True)
class SignalRow:
    """The aggregate of one (minute, tenant, version) over all processes.

    ``minute`` is the epoch minute (``int(unix_time // 60)``); ``tenant`` is ``""`` for
    requests with no tenant. ``status`` counts responses by class (1xx..5xx); ``exceptions``
    counts unhandled exceptions, which are also counted as 5xx; ``slow`` counts requests slower
    than the SLO. ``histogram`` has one count per :data:`HISTOGRAM_BOUNDS` bucket plus the
    overflow; ``cpu_sum`` is the sampled CPU seconds (0 when sampling is off).
    """

    minute: int
    tenant: str
    version: str
    requests: int = 0
    status: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    exceptions: int = 0
    slow: int = 0
    duration_sum: float = 0.0
    histogram: tuple[int, ...] = (0,) * 15
    cpu_sum: float = 0.0

    @property
    def key(self) -> tuple[int, str, str]:
        """``(minute, tenant, version)``: what rows are aggregated by."""
        return (self.minute, self.tenant, self.version)

    def __add__(self, other: SignalRow) -> SignalRow:
        """The sum of two rows of the same key (what a sink does with increments)."""
        if self.key != other.key:
            raise ValueError(f"cannot add rows of different keys: {self.key} and {other.key}")
        a, b = self.status, other.status
        return SignalRow(
            self.minute,
            self.tenant,
            self.version,
            self.requests + other.requests,
            (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]),
            self.exceptions + other.exceptions,
            self.slow + other.slow,
            self.duration_sum + other.duration_sum,
            tuple(x + y for x, y in zip(self.histogram, other.histogram, strict=True)),
            self.cpu_sum + other.cpu_sum,
        )


@dataclass(frozen=True)
class Ticket:
    """One support ticket, attributed to the version its tenant was on when it was opened.

    ``source`` is ``"cli"``, ``"generic"``, ``"zendesk"``, ``"helpscout"``, ``"intercom"``...;
    ``(source, external_id)`` identifies a ticket (deliveries are at-least-once). ``severity``
    is one of :data:`SEVERITIES`; ``at`` the Unix time it was opened; ``version`` the version
    the tenant was on at ``at``, attributed when it was ingested.
    """

    tenant: str
    source: str
    external_id: str
    severity: str
    at: float
    version: str
    text: str = ""


class SignalSink(Protocol):
    """Where signal rows and tickets are kept: one per store URL, opened with
    :func:`cohortroute.signals.open_sink`."""

    def add(self, rows: Sequence[SignalRow]) -> None:
        """Add ``rows`` to the stored aggregates (commutative increments)."""
        ...

    def rows(
        self,
        since_minute: int,
        until_minute: int | None = None,
        versions: Collection[str] | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[SignalRow]:
        """The stored rows with ``since_minute <= minute < until_minute``, optionally only for
        some versions and tenants, ordered by (minute, tenant, version)."""
        ...

    def add_ticket(self, ticket: Ticket) -> bool:
        """Keep ``ticket``; False (and nothing changed) when its (source, external_id) is known."""
        ...

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        """The tickets opened at ``since <= at < until``, oldest first."""
        ...

    def prune(self, before_minute: int) -> int:
        """Delete rows of minutes before ``before_minute`` (and tickets opened before it);
        returns how many went."""
        ...

    def close(self) -> None:
        """Release connections (the sink reopens them if used again)."""
        ...

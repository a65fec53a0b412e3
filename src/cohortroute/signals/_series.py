"""What the metric exports show, from the sink's rows: the series and their labels.

The Prometheus endpoint and the OpenTelemetry instruments both read rows from the sink, choose
the tenants that keep a label of their own (:func:`labelled_tenants`: the candidate's, then the
top by requests; everything else is summed as ``__other__``, no tenant as ``__none__``), sum the
rows into one series per (version, tenant label) and turn each series into :class:`Point`\\ s of
a few :class:`Family` kinds. Keeping that here means both exports bound cardinality the same way
and show the same numbers under the same labels; only the formats differ.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..store._registry import open_store
from ..store.base import Store
from ._rows import CPU, DURATION, EXCEPTIONS, HISTOGRAM, REQUESTS, SLOW, STATUS, WIDTH, add_into
from ._rows import values as row_values
from .model import HISTOGRAM_BOUNDS, OVERFLOW_TENANT, SignalRow, SignalSink
from .sinks import open_sink

log = logging.getLogger(__name__)

#: The tenant label of requests with no tenant.
NO_TENANT = "__none__"
#: The ``status`` label of each status class, in the rows' order.
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: The ``le`` label of each duration bucket (cumulative, as Prometheus writes them).
LE = (*(repr(float(bound)) for bound in HISTOGRAM_BOUNDS), "+Inf")

#: Summed counters (in the rows' flat column order) per (version, tenant label).
Series = dict[tuple[str, str], list[float]]


@dataclass(frozen=True)
class Family:
    """One kind of number an export shows: ``key`` names it, ``unit`` is UCUM (OpenTelemetry)."""

    key: str
    help: str
    unit: str


REQUESTS_FAMILY = Family("requests", "Requests by version, status class and tenant", "{request}")
EXCEPTIONS_FAMILY = Family(
    "exceptions", "Unhandled exceptions (also counted as 5xx)", "{exception}"
)
SLOW_FAMILY = Family("slow_requests", "Requests slower than the SLO", "{request}")
CPU_FAMILY = Family("cpu_seconds", "Sampled CPU seconds, scaled to all requests", "s")
BUCKET_FAMILY = Family(
    "duration_bucket", "Requests complete within le seconds (cumulative buckets)", "{request}"
)
SUM_FAMILY = Family("duration_sum", "Request duration until the response was complete", "s")
COUNT_FAMILY = Family("duration_count", "Requests timed (the duration's count)", "{request}")
#: Every family, in the order :func:`points` yields them.
FAMILIES = (
    REQUESTS_FAMILY,
    EXCEPTIONS_FAMILY,
    SLOW_FAMILY,
    CPU_FAMILY,
    BUCKET_FAMILY,
    SUM_FAMILY,
    COUNT_FAMILY,
)


@dataclass(frozen=True)
class Point:
    """One number of one series: ``extra`` is the ``status`` or ``le`` label, when it has one."""

    family: Family
    version: str
    tenant: str
    value: int | float
    extra: tuple[str, str] | None = None

    def labels(self) -> dict[str, str]:
        """The labels (OpenTelemetry attributes): version, tenant, then the extra one."""
        labels = {"version": self.version, "tenant": self.tenant}
        if self.extra is not None:
            labels[self.extra[0]] = self.extra[1]
        return labels


def open_source(
    store: str | Store | SignalSink, candidate: Callable[[], str | None] | None
) -> tuple[SignalSink, Callable[[], str | None]]:
    """The sink an export reads, and what tells it the candidate version: ``candidate`` if
    given, else the rollout of ``store`` (a store or its URL; a bare sink has no rollout)."""
    if not isinstance(store, str | Store):
        return store, candidate or (lambda: None)
    opened = open_store(store)

    def rollout_candidate() -> str | None:
        rollout = opened.policy().rollout
        return None if rollout is None else rollout.candidate

    return open_sink(opened), candidate or rollout_candidate


def labelled_tenants(
    rows: Iterable[SignalRow], candidate: str | None, top: int, max_candidates: int
) -> set[str]:
    """The tenants that keep a label of their own: the candidate's (the ``max_candidates`` with
    the most requests on ``candidate``), then the ``top`` by requests on every version."""
    requests: Counter[str] = Counter()
    candidates: Counter[str] = Counter()
    for row in rows:
        if row.tenant and row.tenant != OVERFLOW_TENANT:
            requests[row.tenant] += row.requests
            if row.version == candidate:
                candidates[row.tenant] += row.requests
    kept = {tenant for tenant, _ in candidates.most_common(max_candidates)}
    kept.update(tenant for tenant, _ in requests.most_common(top))
    return kept


def tenant_label(tenant: str, labelled: set[str]) -> str:
    """The label ``tenant``'s requests are counted under: its own, ``__none__`` or ``__other__``."""
    if not tenant:
        return NO_TENANT
    return tenant if tenant in labelled else OVERFLOW_TENANT


def by_series(rows: Iterable[SignalRow], labelled: set[str]) -> Series:
    """``rows`` summed per (version, tenant label)."""
    series: Series = {}
    for row in rows:
        key = (row.version, tenant_label(row.tenant, labelled))
        total = series.get(key)
        if total is None:
            total = series[key] = [0] * WIDTH
        add_into(total, row_values(row))
    return series


def points(series: Mapping[tuple[str, str], Sequence[float]]) -> Iterator[Point]:
    """The points of every series, ordered by version and tenant label: each family in turn,
    except the duration's (buckets, sum and count), which come together per series.

    A status class a series has no request of is left out; every other point is there, zero or
    not. Counts are ints, seconds keep their type (floats once anything was timed).
    """
    ordered = sorted(series.items())
    for (version, tenant), v in ordered:
        for i, status_class in enumerate(STATUS_CLASSES):
            if v[STATUS + i]:
                status = ("status", status_class)
                yield Point(REQUESTS_FAMILY, version, tenant, int(v[STATUS + i]), status)
    for family, column in ((EXCEPTIONS_FAMILY, EXCEPTIONS), (SLOW_FAMILY, SLOW)):
        for (version, tenant), v in ordered:
            yield Point(family, version, tenant, int(v[column]))
    for (version, tenant), v in ordered:
        yield Point(CPU_FAMILY, version, tenant, v[CPU])
    for (version, tenant), v in ordered:
        cumulative = 0
        for le, count in zip(LE, v[HISTOGRAM:], strict=True):
            cumulative += int(count)
            yield Point(BUCKET_FAMILY, version, tenant, cumulative, ("le", le))
        yield Point(SUM_FAMILY, version, tenant, v[DURATION])
        yield Point(COUNT_FAMILY, version, tenant, int(v[REQUESTS]))

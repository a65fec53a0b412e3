"""A Prometheus text endpoint generated from the signal sink, so every process and server counts.

``prometheus_app(store)`` is a WSGI app to mount (``/metrics``). Each scrape reads the rows of
the last ``window`` minutes from the sink and writes them in the Prometheus text format --
computed, like the counts, from the store, never from one process's memory, so whichever worker
answers the scrape answers the same. The values are totals over that sliding window: gauges,
and a histogram whose buckets are cumulative (``le``) as Prometheus wants; read them directly
(``histogram_quantile(0.95, cohortroute_request_duration_seconds_bucket)``), not through
``rate()``.

Cardinality is bounded: a series has a ``tenant`` label of its own only for the candidate's
tenants (those served the rollout's candidate version in the window, at most ``max_candidates``)
and the ``top`` tenants by requests; everything else is summed under ``__other__``, and requests
with no tenant under ``__none__``. No ``prometheus_client`` is involved anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .._clock import SYSTEM, Clock
from .._types import StartResponse, WSGIEnvironment
from ..store.base import Store
from ._series import (
    BUCKET_FAMILY,
    COUNT_FAMILY,
    CPU_FAMILY,
    EXCEPTIONS_FAMILY,
    NO_TENANT,
    REQUESTS_FAMILY,
    SLOW_FAMILY,
    SUM_FAMILY,
    Family,
    by_series,
    labelled_tenants,
    open_source,
    points,
)
from .model import SignalRow, SignalSink

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DURATION = "cohortroute_request_duration_seconds"
# Each family's metric name, and the family (name, type) whose HELP and TYPE lines head it.
_NAMES: dict[Family, tuple[str, str, str]] = {
    REQUESTS_FAMILY: ("cohortroute_requests", "cohortroute_requests", "gauge"),
    EXCEPTIONS_FAMILY: ("cohortroute_exceptions", "cohortroute_exceptions", "gauge"),
    SLOW_FAMILY: ("cohortroute_slow_requests", "cohortroute_slow_requests", "gauge"),
    CPU_FAMILY: ("cohortroute_cpu_seconds", "cohortroute_cpu_seconds", "gauge"),
    BUCKET_FAMILY: (f"{_DURATION}_bucket", _DURATION, "histogram"),
    SUM_FAMILY: (f"{_DURATION}_sum", _DURATION, "histogram"),
    COUNT_FAMILY: (f"{_DURATION}_count", _DURATION, "histogram"),
}
_HELP = {_DURATION: SUM_FAMILY.help}

__all__ = ["CONTENT_TYPE", "NO_TENANT", "labelled_tenants", "prometheus_app", "render"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render(rows: Iterable[SignalRow], labelled: set[str], window: int) -> str:
    """The exposition text for ``rows`` (see the module docstring)."""
    groups: dict[str, list[str]] = {group: [] for _, group, _ in _NAMES.values()}
    for point in points(by_series(rows, labelled)):
        name, group, _ = _NAMES[point.family]
        labels = ",".join(f'{key}="{_escape(value)}"' for key, value in point.labels().items())
        groups[group].append(f"{name}{{{labels}}} {_number(point.value)}")
    out: list[str] = []
    for family, (_, group, kind) in _NAMES.items():
        if group in groups:
            help_text = _HELP.get(group, family.help)
            out.append(f"# HELP {group} {help_text} (last {window} minutes, every process)")
            out.append(f"# TYPE {group} {kind}")
            out.extend(groups.pop(group))
    return "\n".join(out) + "\n"


def prometheus_app(
    store: str | Store | SignalSink,
    *,
    window: int = 5,
    top: int = 20,
    max_candidates: int = 200,
    candidate: Callable[[], str | None] | None = None,
    clock: Clock = SYSTEM,
) -> Callable[[WSGIEnvironment, StartResponse], list[bytes]]:
    """A WSGI app answering every request with the metrics text (mount it on ``/metrics``).

    :param store: the store (or its URL) the routers flush to, or a sink.
    :param window: minutes summed, the current one included.
    :param top: tenants labelled by their request count, besides the candidate's.
    :param max_candidates: the most candidate tenants labelled.
    :param candidate: returns the candidate version; by default the store's rollout's.
    """
    sink, wanted_version = open_source(store, candidate)

    def metrics(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        now = int(clock.time() // 60)
        try:
            rows = sink.rows(now - window + 1, now + 1)
            wanted = wanted_version()
        except Exception as exc:
            log.warning("cohortroute: metrics unavailable: %s", exc)
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"signals unavailable: {exc}\n".encode()]
        body = render(rows, labelled_tenants(rows, wanted, top, max_candidates), window).encode()
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]

    return metrics

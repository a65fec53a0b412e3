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
from collections import Counter
from collections.abc import Callable, Iterable

from .._clock import SYSTEM, Clock
from .._types import StartResponse, WSGIEnvironment
from ..store.base import Store
from ._rows import WIDTH, add_into, values
from .model import HISTOGRAM_BOUNDS, OVERFLOW_TENANT, SignalRow, SignalSink
from .sinks import open_sink

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_TENANT = "__none__"
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_BOUNDS = tuple(repr(float(bound)) for bound in HISTOGRAM_BOUNDS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def labelled_tenants(
    rows: Iterable[SignalRow], candidate: str | None, top: int, max_candidates: int
) -> set[str]:
    """The tenants that keep a label of their own: the candidate's, then the top by requests."""
    rows = list(rows)
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


def _sample(name: str, version: str, tenant: str, value: object, extra: str = "") -> str:
    labels = f'version="{_escape(version)}",tenant="{_escape(tenant)}"{extra}'
    return f"{name}{{{labels}}} {value}"


def render(rows: Iterable[SignalRow], labelled: set[str], window: int) -> str:
    """The exposition text for ``rows`` (see the module docstring)."""
    series: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        tenant = row.tenant if row.tenant in labelled else OVERFLOW_TENANT
        total = series.setdefault((row.version, tenant if row.tenant else NO_TENANT), [0] * WIDTH)
        add_into(total, values(row))
    ordered = sorted(series.items())
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text} (last {window} minutes, every process)")
        out.append(f"# TYPE {name} {kind}")

    family("cohortroute_requests", "gauge", "Requests by version, status class and tenant")
    for (version, tenant), v in ordered:
        for i, status_class in enumerate(_CLASSES):
            if v[1 + i]:
                extra = f',status="{status_class}"'
                out.append(_sample("cohortroute_requests", version, tenant, v[1 + i], extra))
    for name, column, help_text in (
        ("cohortroute_exceptions", 6, "Unhandled exceptions (also counted as 5xx)"),
        ("cohortroute_slow_requests", 7, "Requests slower than the SLO"),
        ("cohortroute_cpu_seconds", 9, "Sampled CPU seconds, scaled to all requests"),
    ):
        family(name, "gauge", help_text)
        for (version, tenant), v in ordered:
            out.append(_sample(name, version, tenant, _number(v[column])))
    name = "cohortroute_request_duration_seconds"
    family(name, "histogram", "Request duration until the response was complete")
    for (version, tenant), v in ordered:
        cumulative = 0
        for bound, count in zip((*_BOUNDS, "+Inf"), v[10:], strict=True):
            cumulative += int(count)
            out.append(_sample(f"{name}_bucket", version, tenant, cumulative, f',le="{bound}"'))
        out.append(_sample(f"{name}_sum", version, tenant, _number(v[8])))
        out.append(_sample(f"{name}_count", version, tenant, int(v[0])))
    return "\n".join(out) + "\n"


def _rollout_candidate(store: Store | None) -> Callable[[], str | None]:
    def candidate() -> str | None:
        rollout = None if store is None else store.policy().rollout
        return None if rollout is None else rollout.candidate

    return candidate


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
    opened: Store | None = None
    if isinstance(store, str | Store):
        opened = store if isinstance(store, Store) else None
        sink: SignalSink = open_sink(store)
    else:
        sink = store
    wanted_version = candidate if candidate is not None else _rollout_candidate(opened)

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

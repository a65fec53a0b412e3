"""OpenTelemetry metrics generated from the signal sink (the ``cohortroute[otel]`` extra).

``register_otel_metrics(meter, store)`` registers observable counters whose callbacks read the
rows of the last ``window`` minutes from the sink -- every process's and server's counts, as
the Prometheus endpoint does -- with the same series and the same bounded tenant labels
(:mod:`._series`: the candidate's tenants and the ``top`` by requests keep a label, everything
else is ``__other__``, no tenant ``__none__``).

OpenTelemetry counters are cumulative, while the sink keeps per-minute rows: each read adds
what grew in each row since the last read to the series the row's tenant is labelled under
*then*, so every counter only goes up, whichever tenants keep a label from one read to the
next. Counting starts with the rows of the ``window`` minutes before the first read; a flush
that lands in a minute older than ``window`` is not counted. OpenTelemetry has no observable
histogram: the duration is exported as counters of its cumulative buckets (``le``), its sum and
its count. One read serves every instrument of one collection: the points are kept ``cache``
seconds on the injected clock, so a burst of collections reads the store once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .._clock import SYSTEM, Clock
from ..errors import ConfigurationError
from ..store.base import Store
from ._rows import WIDTH, add_into, values
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
    Point,
    labelled_tenants,
    open_source,
    points,
    tenant_label,
)
from .model import OVERFLOW_TENANT, SignalSink

if TYPE_CHECKING:
    from opentelemetry.metrics import (
        CallbackOptions,
        Meter,
        MeterProvider,
        ObservableCounter,
        Observation,
    )

log = logging.getLogger(__name__)

#: Each family's instrument name (what an OTLP-to-Prometheus bridge turns into ``_total``).
INSTRUMENTS: dict[Family, str] = {
    REQUESTS_FAMILY: "cohortroute.requests",
    EXCEPTIONS_FAMILY: "cohortroute.exceptions",
    SLOW_FAMILY: "cohortroute.slow_requests",
    CPU_FAMILY: "cohortroute.cpu_time",
    BUCKET_FAMILY: "cohortroute.request.duration.bucket",
    SUM_FAMILY: "cohortroute.request.duration.sum",
    COUNT_FAMILY: "cohortroute.request.duration.count",
}
_ALWAYS = frozenset({OVERFLOW_TENANT, NO_TENANT})


class _Totals:
    """The cumulative series, advanced from the sink's rows at most once every ``cache`` s."""

    def __init__(
        self,
        sink: SignalSink,
        candidate: Callable[[], str | None],
        *,
        window: int,
        top: int,
        max_candidates: int,
        cache: float,
        clock: Clock,
    ) -> None:
        self._sink = sink
        self._candidate = candidate
        self._window, self._top, self._max_candidates = window, top, max_candidates
        self._cache = cache
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._points: dict[Family, list[Point]] = {}
        # The last values read of each row still in the window, and every series' totals.
        self._seen: dict[tuple[int, str, str], list[float]] = {}
        self._totals: dict[tuple[str, str], list[float]] = {}

    def points(self, family: Family) -> list[Point]:
        """``family``'s points now: read again once the cached ones are ``cache`` s old."""
        with self._lock:
            now = self._clock.monotonic()
            if self._read_at is None or now - self._read_at >= self._cache:
                self._read_at = now
                try:
                    self._points = self._read()
                except Exception as exc:
                    # The counters keep their totals; the next read that works goes on from them.
                    log.warning("cohortroute: OpenTelemetry metrics unavailable: %s", exc)
                    self._points = {}
            return self._points.get(family, [])

    def _read(self) -> dict[Family, list[Point]]:
        minute = int(self._clock.time() // 60)
        since = minute - self._window + 1
        rows = self._sink.rows(since, minute + 1)
        labelled = labelled_tenants(rows, self._candidate(), self._top, self._max_candidates)
        for row in rows:
            new = values(row)
            old = self._seen.get(row.key)
            if new == old:
                continue  # most rows: minutes nobody flushed to since the last read
            self._seen[row.key] = new
            grown = new
            if old is not None:
                grown = [n - o if n > o else 0 for n, o in zip(new, old, strict=True)]
            if any(grown):
                key = (row.version, tenant_label(row.tenant, labelled))
                total = self._totals.get(key)
                if total is None:
                    total = self._totals[key] = [0] * WIDTH
                add_into(total, grown)
        self._seen = {key: seen for key, seen in self._seen.items() if key[0] >= since}
        shown = {
            key: total
            for key, total in self._totals.items()
            if key[1] in labelled or key[1] in _ALWAYS
        }
        out: dict[Family, list[Point]] = {}
        for point in points(shown):
            out.setdefault(point.family, []).append(point)
        return out


def _require_otel() -> None:
    try:
        import opentelemetry.metrics  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "OpenTelemetry metrics need the opentelemetry-api package: "
            "pip install 'cohortroute[otel]'"
        ) from exc


def register_otel_metrics(
    meter: Meter | MeterProvider | None,
    store: str | Store | SignalSink,
    *,
    window: int = 5,
    top: int = 20,
    max_candidates: int = 200,
    candidate: Callable[[], str | None] | None = None,
    cache: float = 1.0,
    clock: Clock = SYSTEM,
) -> list[ObservableCounter]:
    """Register observable counters of the store's signals on ``meter``; returns them.

    :param meter: a meter, a meter provider (its ``cohortroute`` meter is used) or None for the
        global provider's.
    :param store: the store (or its URL) the routers flush to, or a sink.
    :param window: minutes read each time: tenants are labelled by them, and a flush later than
        that is not counted.
    :param top: tenants labelled by their request count, besides the candidate's.
    :param max_candidates: the most candidate tenants labelled.
    :param candidate: returns the candidate version; by default the store's rollout's.
    :param cache: seconds one read of the store serves every instrument's callback.
    :raises ConfigurationError: opentelemetry-api is not installed.
    """
    from .. import __version__

    _require_otel()
    from opentelemetry.metrics import MeterProvider, Observation, get_meter

    if meter is None:
        meter = get_meter("cohortroute", __version__)
    elif isinstance(meter, MeterProvider):
        meter = meter.get_meter("cohortroute", __version__)
    sink, wanted = open_source(store, candidate)
    totals = _Totals(
        sink,
        wanted,
        window=window,
        top=top,
        max_candidates=max_candidates,
        cache=cache,
        clock=clock,
    )

    def observe(family: Family) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(point.value, point.labels()) for point in totals.points(family)]

        return callback

    return [
        meter.create_observable_counter(
            name, callbacks=[observe(family)], unit=family.unit, description=family.help
        )
        for family, name in INSTRUMENTS.items()
    ]

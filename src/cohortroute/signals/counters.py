"""Per-version counters on the request path: no lock, one list item increment per counter.

A :class:`VersionCounter` holds, for one mounted version, a dict ``tenant -> row`` for the
current minute (a row is a flat list, see :mod:`._rows`). Recording a request is a few list
increments on that row. The :class:`~.recorder.Recorder` takes the dict away wholesale when it
flushes, replacing it with an empty one.

Why no lock is needed (CPython with the GIL): a thread only gives up the interpreter at a few
points -- a call returning, a backward jump, a blocking call. :meth:`VersionCounter._record`
reads ``self._counts``, looks up the row and increments it in one stretch of bytecode with
none of those points in it (the row look-up is a subscript, not ``.get()``; the histogram
bucket is found before), so no other thread runs in between. When the flusher swaps the dict,
no request is half-way through an update of it: every later update goes to the new dict, and
nothing is lost or counted twice. A free-threaded (no-GIL) build would need a lock here.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from typing import TYPE_CHECKING

from .._clock import Clock
from ._rows import CPU as CPU_COLUMN
from ._rows import DURATION, EXCEPTIONS, HISTOGRAM, SLOW, ZERO
from .model import HISTOGRAM_BOUNDS

if TYPE_CHECKING:
    from .recorder import Recorder

log = logging.getLogger(__name__)

#: The column of each status class's first character ("2" -> the 2xx column); others are 5xx.
STATUS_COLUMN = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
FIVE_XX = 5


#: The first histogram bound: most requests end before it, and skip the bisection.
FIRST_BOUND = HISTOGRAM_BOUNDS[0]


def bucket_of(duration: float) -> int:
    """The row column of the histogram bucket ``duration`` (seconds) falls in."""
    if duration <= FIRST_BOUND:
        return HISTOGRAM
    return HISTOGRAM + bisect_left(HISTOGRAM_BOUNDS, duration)


def status_column(code: int) -> int:
    """The status column for a numeric status (ASGI): out-of-range codes count as 5xx."""
    return code // 100 if 100 <= code < 600 else FIVE_XX


class VersionCounter:
    """The counts of one version in the current minute, updated without a lock."""

    def __init__(self, version: str, recorder: Recorder, clock: Clock) -> None:
        self.version = version
        self._recorder = recorder
        self._clock = clock
        self._read_clock = clock.monotonic
        self._slo = recorder.config.slo
        self._cpu_every = recorder.config.cpu_sample
        self._cpu_tick = 0
        #: tenant -> row for :attr:`minute`; swapped wholesale by the recorder.
        self._counts: dict[str, list[float]] = {}
        #: The epoch minute the rows count; -1 before the first request.
        self.minute = -1
        # When (on the clock's monotonic()) the minute ends; -inf: roll at the first request.
        self._rollover = float("-inf")
        recorder.attach(self)

    def _record(
        self, tenant: str, column: int, began: float, end: float, failed: bool, cpu: float
    ) -> None:
        """Count one finished request of ``tenant`` (``column``: its status column).

        A row's ``requests`` is not counted here: it is the sum of its status columns, filled
        in when the row is flushed (one increment less per request).
        """
        if end >= self._rollover:
            self._roll(end)
        duration = end - began
        bucket = bucket_of(duration)
        while True:
            # From here to the end of the increments nothing may call a function: see the module
            # docstring (a KeyError leaves the stretch, and the look-up starts again after).
            counts = self._counts
            try:
                row = counts[tenant]
            except KeyError:
                tenant = self._recorder.add_row(self, tenant)
                continue
            row[column] += 1
            row[DURATION] += duration
            row[bucket] += 1
            if duration > self._slo:
                row[SLOW] += 1
            if failed:
                row[EXCEPTIONS] += 1
            if cpu:
                row[CPU_COLUMN] += cpu
            return

    def _roll(self, end: float) -> None:
        """Start a new minute: hand the finished one's rows to the recorder."""
        self._recorder.roll(self, end)

    def cpu_due(self) -> bool:
        """Whether to measure this request's CPU time (one in ``cpu_sample``)."""
        every = self._cpu_every
        if not every:
            return False
        self._cpu_tick += 1  # a race only shifts which request is sampled
        return self._cpu_tick % every == 0

    def take(self, empty: dict[str, list[float]]) -> tuple[int, dict[str, list[float]]]:
        """Swap in ``empty`` and return ``(minute, rows)`` counted so far (recorder's lock held).

        ``empty`` is made by the caller: nothing between reading the old dict and storing the
        new one may allocate or call, so no request runs in between.
        """
        old, self._counts = self._counts, empty
        return self.minute, old

    def start_minute(
        self, minute: int, ends: float, empty: dict[str, list[float]]
    ) -> tuple[int, dict[str, list[float]]]:
        """Count into ``empty`` for ``minute`` until ``ends``; returns the previous minute and
        its rows (recorder's lock held; like :meth:`take`, nothing in between may call)."""
        old_minute, old = self.minute, self._counts
        self._counts, self.minute, self._rollover = empty, minute, ends
        return old_minute, old

    @property
    def rollover(self) -> float:
        """When (on the clock's monotonic()) the current minute ends."""
        return self._rollover

    def new_row(self, tenant: str) -> None:
        """Add an empty row for ``tenant`` to the current minute (recorder's lock held)."""
        counts = self._counts
        if tenant not in counts:
            counts[tenant] = ZERO.copy()

    def has_row(self, tenant: str) -> bool:
        """Whether ``tenant`` has a row in the current minute."""
        return tenant in self._counts

    def close(self) -> None:
        """Write what is counted and stop the flush thread (see :meth:`.Recorder.close`)."""
        self._recorder.close()

    def flush(self) -> int:
        """Write what is counted now; returns how many rows were written."""
        return self._recorder.flush()

    @property
    def recorder(self) -> Recorder:
        """The recorder this version's counts are flushed by."""
        return self._recorder

    def reset(self) -> None:
        """Forget every count (in a forked child: the parent writes its own counts)."""
        self._counts = {}
        self.minute = -1
        self._rollover = float("-inf")

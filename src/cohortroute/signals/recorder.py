"""The recorder: collects every version's counts and writes them to the sink, off the request path.

One :class:`Recorder` per router (or per standalone :class:`~.wrappers.Signals`). Each flush
swaps every :class:`~.counters.VersionCounter`'s dict for an empty one, merges the rows into
*unsent* deltas keyed by (minute, tenant, version), and adds them to the sink in batches, each
batch one commutative increment that any number of processes may make in any order.

The flush runs on one daemon thread per recorder, started by the first request (so a forked
child starts its own), every ``flush_interval`` seconds on the injected clock, and also at
:meth:`Recorder.close` and at process exit. A sink that is slow or down never blocks a request:
its rows stay unsent and are retried with back-off; at most ``max_unsent`` rows are kept, and
past that the oldest minutes are dropped and counted (:meth:`Recorder.status`). A batch whose
write failed after the server applied it (a lost reply) is counted twice: writes are
at-least-once. Rows of minutes older than the retention are pruned once an hour.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from .. import _forksafe, _worker
from .._backoff import Backoff
from .._clock import Clock
from ..router import _exit
from ._rows import EXCEPTIONS, REQUESTS, STATUS, add_into, to_row
from .config import SignalsConfig
from .counters import VersionCounter
from .model import OVERFLOW_TENANT, SignalRow, SignalSink

log = logging.getLogger(__name__)

#: Seconds between two prunes of minutes older than the retention.
PRUNE_INTERVAL = 3600.0

Key = tuple[int, str, str]


class Recorder:
    """Collects the counts of one router's versions and flushes them to ``sink``."""

    def __init__(self, sink: SignalSink, config: SignalsConfig, clock: Clock) -> None:
        self.sink = sink
        self.config = config
        self._clock = clock
        self._counters: list[VersionCounter] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._live = 0  # rows in the counters' current dicts
        self._retired: list[tuple[int, str, dict[str, list[float]]]] = []
        self._unsent: dict[Key, list[float]] = {}
        self._backoff = Backoff(minimum=min(1.0, config.flush_interval), maximum=60.0, jitter=True)
        self._due = clock.monotonic() + config.flush_interval
        self._next_prune = clock.monotonic()
        self._worker = _worker.Worker(clock, name="cohortroute-signals", what="signals")
        self._closed = False
        #: What went wrong or was given up, for :meth:`status`.
        self.overflowed = 0
        self.dropped_rows = 0
        self.dropped_requests = 0
        self.failures = 0
        self.last_error: str | None = None
        _forksafe.register(self, after_in_child=Recorder._after_fork)
        _exit.flush_at_exit(self)

    # --- the request path's slow branches (a new row, a new minute) ---------------------------

    def attach(self, counter: VersionCounter) -> None:
        """Flush ``counter``'s rows with the others."""
        with self._lock:
            self._counters.append(counter)

    def add_row(self, counter: VersionCounter, tenant: str) -> str:
        """Give ``tenant`` a row in ``counter``'s minute; returns the tenant to count under
        (:data:`OVERFLOW_TENANT` once ``max_rows`` rows are counted this minute). Requests with
        no tenant (``""``) always keep their own row: one per version, so the bound holds."""
        with self._lock:
            if not counter.has_row(tenant):
                if tenant and self._live >= self.config.max_rows:
                    self.overflowed += 1
                    tenant = OVERFLOW_TENANT
                if not counter.has_row(tenant):
                    counter.new_row(tenant)
                    self._live += 1
            self._worker.running(self)  # the flush thread, started with the first row
        return tenant

    def roll(self, counter: VersionCounter, end: float) -> None:
        """Move ``counter`` to the minute ``end`` (a monotonic time) falls in."""
        wall = self._clock.time() + (end - self._clock.monotonic())
        minute = int(wall // 60)
        ends = end + (minute + 1) * 60 - wall
        empty: dict[str, list[float]] = {}
        with self._lock:
            if end < counter.rollover:
                return  # another thread rolled it already
            old_minute, old = counter.start_minute(minute, ends, empty)
            if old:
                self._retired.append((old_minute, counter.version, old))

    # --- flushing -------------------------------------------------------------------------------

    def until_due(self) -> float:
        """Seconds until the next flush (0.0: now)."""
        return max(0.0, self._due - self._clock.monotonic())

    def _take(self) -> None:
        """Move every counted row into the unsent deltas."""
        with self._lock:
            taken = self._retired
            self._retired = []
            for counter in self._counters:
                empty: dict[str, list[float]] = {}
                minute, rows = counter.take(empty)
                if rows:
                    taken.append((minute, counter.version, rows))
            self._live = 0
        unsent = self._unsent
        for minute, version, rows in taken:
            for tenant, values in rows.items():
                key = (minute, tenant, version)
                total = unsent.get(key)
                if total is None:
                    unsent[key] = values
                else:
                    add_into(total, values)
        if len(unsent) > self.config.max_unsent:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        unsent = self._unsent
        excess = len(unsent) - self.config.max_unsent
        for key in sorted(unsent)[:excess]:
            self.dropped_requests += int(sum(unsent.pop(key)[STATUS:EXCEPTIONS]))
        self.dropped_rows += excess
        log.warning(
            "cohortroute: %d signal rows (%d requests) dropped so far: the signal store was "
            "not written for a while and at most max_unsent=%d rows are kept (last error: %s)",
            self.dropped_rows,
            self.dropped_requests,
            self.config.max_unsent,
            self.last_error,
        )

    def flush(self) -> int:
        """Write every counted row to the sink now; returns how many rows were written.

        A failed write is logged, and its rows wait for the next flush (after a back-off);
        it never raises.
        """
        return self._flush(None)

    def flush_at_exit(self) -> int:
        """:meth:`flush`, as the process exits: rows it cannot write are lost, and the WARNING
        says how many rows and requests (not "kept, retrying")."""
        return self._flush("exit")

    def _flush(self, ending: str | None) -> int:
        with self._flushing:
            self._take()
            written = 0
            try:
                for batch in self._batches():
                    self.sink.add([self._row(key) for key in batch])
                    for key in batch:
                        del self._unsent[key]
                    written += len(batch)
            except Exception as exc:
                self._failed(exc, ending)
            else:
                self._backoff.reset()
                self._due = self._clock.monotonic() + self.config.flush_interval
                self.last_error = None
                self._prune()
            return written

    def _row(self, key: Key) -> SignalRow:
        counts = self._unsent[key]
        counts[REQUESTS] = sum(counts[STATUS:EXCEPTIONS])  # see VersionCounter._record
        return to_row(*key, counts)

    def _batches(self) -> Iterator[list[Key]]:
        # Sorted, so concurrent writers lock rows in the same order (no deadlock in PostgreSQL).
        keys = sorted(self._unsent)
        size = self.config.batch
        for start in range(0, len(keys), size):
            yield keys[start : start + size]

    def _failed(self, exc: Exception, ending: str | None) -> None:
        self.failures += 1
        first = self.last_error is None
        self.last_error = f"{type(exc).__name__}: {exc}"
        if ending is not None:
            requests = sum(int(sum(v[STATUS:EXCEPTIONS])) for v in self._unsent.values())
            log.warning(
                "cohortroute: could not write %d signal rows (%d requests) at %s (%s); %s",
                len(self._unsent),
                requests,
                ending,
                self.last_error,
                "they are lost"
                if ending == "exit"
                else "kept for a later flush, lost if the process ends now",
            )
            return
        delay = self._backoff.next()
        self._due = self._clock.monotonic() + delay
        (log.warning if first else log.debug)(
            "cohortroute: could not write %d signal rows (%s); kept, retrying in %.1f s",
            len(self._unsent),
            self.last_error,
            delay,
        )

    def _prune(self) -> None:
        now = self._clock.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL
        before = int(self._clock.time() // 60) - self.config.retention_minutes
        try:
            self.sink.prune(before)
        except Exception as exc:
            log.warning(
                "cohortroute: could not prune signal rows before minute %d: %s", before, exc
            )

    # --- life cycle -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counters of what the recorder could not do, and what waits to be written."""
        return {
            "unsent_rows": len(self._unsent),
            "overflowed_requests": self.overflowed,
            "dropped_rows": self.dropped_rows,
            "dropped_requests": self.dropped_requests,
            "write_failures": self.failures,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        """Write what is counted and stop the flush thread (a later request starts it again)."""
        try:
            try:
                self._flush("close")
            finally:
                self._worker.stop()
        finally:
            self.sink.close()

    def _after_fork(self) -> None:
        # The child's counts start at zero: the parent writes what it counted itself.
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._worker.forget()
        self._retired = []
        self._unsent = {}
        self._live = 0
        for counter in self._counters:
            counter.reset()

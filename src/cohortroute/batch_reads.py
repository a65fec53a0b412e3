"""Batched, single-flight reads of tenant records from a remote store, off the request thread.

When the store is slow, look-ups for many tenants must not queue one behind the other: a
router that misses 400 tenants at once against a store taking 0.6 s a read would need a minute
to read them one by one on a small pool. :class:`BatchReader` queues every name asked for and
reads whatever is queued in one call (``Store.read_tenants``: one round trip on Redis and
PostgreSQL), so the time until every tenant has its record does not grow with their number.
A name already queued or being read is not queued again (single flight), and at most
:data:`MAX_QUEUED` names wait at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from .errors import StoreError
from .policy import TenantRecord

log = logging.getLogger(__name__)

#: Names read in one call at most (a bigger queue is read in several).
BATCH = 2_000
#: Names waiting or being read at most; more misses get their fallback at once.
MAX_QUEUED = 10_000

Read = Callable[[Sequence[str]], dict[str, TenantRecord]]


class BatchReader:
    """Reads queued tenant names in batches with ``read`` on ``pool`` (at most ``readers`` at
    a time); :meth:`get` answers a future per name."""

    def __init__(self, read: Read, pool: Callable[[], ThreadPoolExecutor], *, readers: int = 2):
        self._read = read
        self._pool = pool
        self._readers = readers
        self._lock = threading.Lock()
        self._queued: dict[str, Future[TenantRecord]] = {}
        self._inflight: dict[str, Future[TenantRecord]] = {}
        self._running = 0

    def reset(self) -> None:
        """Forget queued and in-flight names (a forked child, or the pool was shut down)."""
        self._lock = threading.Lock()
        self._queued, self._inflight, self._running = {}, {}, 0

    def get(self, name: str) -> Future[TenantRecord] | None:
        """The future record of ``name``; None when too many names wait already."""
        with self._lock:
            future = self._inflight.get(name)
            if future is not None:
                return future
            if len(self._inflight) >= MAX_QUEUED:
                return None
            future = Future()
            self._inflight[name] = self._queued[name] = future
            start = self._running < self._readers
            if start:
                self._running += 1
        if start:
            try:
                self._pool().submit(self._drain)
            except RuntimeError:  # the pool was shut down meanwhile (close): fail this one
                with self._lock:
                    self._running -= 1
                self._fail([name], StoreError("the store reader was closed"))
        return future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queued:
                    self._running -= 1
                    return
                names = list(self._queued)[:BATCH]
                futures = [self._queued.pop(name) for name in names]
            try:
                records = self._read(names)
            except BaseException as exc:
                self._fail(names, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for name, future in zip(names, futures, strict=True):
                if not future.done():
                    future.set_result(records.get(name) or TenantRecord(name))
            with self._lock:
                for name, future in zip(names, futures, strict=True):
                    if self._inflight.get(name) is future:
                        del self._inflight[name]

    def _fail(self, names: Sequence[str], exc: BaseException) -> None:
        with self._lock:
            futures = [self._inflight.pop(name, None) for name in names]
            for name in names:
                self._queued.pop(name, None)
        for future in futures:
            if future is not None and not future.done():
                future.set_exception(exc)


__all__ = ["BATCH", "MAX_QUEUED", "BatchReader"]

"""Tenants per version, kept up to date in the background so no page view scans the registry.

A page reads the last tally instantly; when the store's revision has moved on (and the tally is
older than ``every`` seconds) one background thread counts again. With a million tenants a count
takes seconds, which is why it never runs inside a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..explain import decide_for
from ..store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tally:
    """Tenants per version (and pins per version) as of ``revision``, counted at ``at``."""

    revision: int
    at: float
    versions: dict[str, int] = field(default_factory=dict)
    pins: dict[str, int] = field(default_factory=dict)
    registered: int = 0


class TenantCounts:
    """The latest :class:`Tally`, recounted in a background thread when the store changes."""

    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.time, every: float = 30.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._every = every
        self._lock = threading.Lock()
        self._tally: Tally | None = None
        self._running: threading.Thread | None = None

    def latest(self, *, refresh: bool = True) -> Tally | None:
        """The last tally (None before the first one ends); starts a recount when it is stale."""
        with self._lock:
            tally = self._tally
            stale = tally is None or (
                tally.revision != self._store.revision() and self._clock() - tally.at >= self._every
            )
            if refresh and stale and self._running is None:
                self._running = threading.Thread(
                    target=self._count_in_background, name="cohortroute-admin-counts", daemon=True
                )
                self._running.start()
        return tally

    def count_now(self) -> Tally:
        """Count in this thread (tests and the first page of a small store)."""
        revision = self._store.revision()
        policy = self._store.policy()
        now = self._clock()
        versions: Counter[str] = Counter()
        pins: Counter[str] = Counter()
        registered = 0
        for record in self._store.tenants():
            registered += record.registered
            if record.pin is not None:
                pins[record.pin] += 1
            if policy.default is not None:
                versions[decide_for(policy, record, now).version] += 1
        tally = Tally(revision, now, dict(versions), dict(pins), registered)
        with self._lock:
            self._tally = tally
        return tally

    def wait(self) -> Tally | None:
        """Wait for a running recount to end; returns the latest tally."""
        running = self._running
        if running is not None:
            running.join()
        return self._tally

    def _count_in_background(self) -> None:
        try:
            self.count_now()
        except Exception:  # a failing store must not kill the console; the page shows "-"
            log.exception("cohortroute admin: counting tenants per version failed")
        finally:
            with self._lock:
                self._running = None

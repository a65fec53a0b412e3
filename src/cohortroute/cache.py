"""The router's view of the store: the policy per revision, and last-known state when it fails.

The hot path never calls the store. A router asks this view for the policy and for a tenant's
record only on a decision-cache miss, and asks it at most once per refresh interval whether the
revision moved. When the store fails, the view keeps answering from the last state it saw and
reports itself degraded, so a store hiccup never fails a user's request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from cachetools import TTLCache

from .errors import CohortRouteError, StoreError
from .policy import Policy, TenantRecord
from .store.base import Store

log = logging.getLogger("cohortroute")

_LOG_EVERY = 30.0  # seconds between repeated log lines about the same store failure


class StateView:
    """Cached reads of one store for one router, with degraded-mode bookkeeping.

    ``records`` is the cold tier: recently read tenant records, bounded and expiring, in front
    of the store. It is dropped with everything else when the revision moves.
    """

    def __init__(
        self,
        store: Store,
        versions: Sequence[str],
        default: str,
        *,
        record_cache_size: int = 100_000,
        record_ttl: float = 300.0,
    ) -> None:
        self.store = store
        self._versions = list(versions)
        self._default = default
        self._lock = threading.Lock()
        self._registered = False
        self.policy = Policy(default=None, versions=frozenset(versions), revision=-1)
        self.revision = -1
        self.degraded = False
        self.last_error: str | None = None
        self._last_log = 0.0
        self._records: TTLCache[str, TenantRecord] = TTLCache(record_cache_size, record_ttl)

    def register(self) -> bool:
        """Record this router's versions in the store (once); False when the store failed."""
        if self._registered:
            return True
        try:
            self.store.register_versions(self._versions, self._default, actor="cohortroute-router")
        except StoreError as exc:
            self._failed("could not record this router's versions in the store", exc)
            return False
        self._registered = True
        return True

    def refresh(self) -> bool:
        """Re-read the policy if the revision moved; True when the caller must drop its caches."""
        if not self._registered and not self.register():
            return False
        try:
            revision = self.store.revision()
            if revision == self.revision:
                return self._recovered()
            policy = self.store.policy()
        except StoreError as exc:
            self._failed("could not read the store; serving the last-known state", exc)
            return False
        with self._lock:
            self.policy = policy
            self.revision = policy.revision
            self._records.clear()
        self._recovered()
        return True

    def tenant(self, name: str) -> TenantRecord | None:
        """The tenant's record; None when the store failed and nothing is known about it."""
        with self._lock:
            record = self._records.get(name)
        if record is not None:
            return record
        try:
            record = self.store.tenant(name)
        except StoreError as exc:
            self._failed("could not read a tenant from the store; serving the default", exc)
            return None
        with self._lock:
            self._records[name] = record
        return record

    def _failed(self, what: str, exc: CohortRouteError) -> None:
        self.degraded = True
        self.last_error = f"{what}: {exc}"
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            log.error("cohortroute degraded: %s", self.last_error)

    def _recovered(self) -> bool:
        """Leave degraded mode; True when it was degraded (decisions made meanwhile are stale)."""
        if not self.degraded:
            return False
        self.degraded = False
        self.last_error = None
        log.warning("cohortroute recovered: the store answers again")
        return True

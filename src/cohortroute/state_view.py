"""The router's view of the store: the policy per revision, tenant records, and degraded mode.

The hot path never calls the store. A router asks this view for a tenant's record only on a
decision-cache miss, and asks it at most once per refresh interval whether the revision moved.

When the store fails, the view keeps answering from the last state it saw and reports itself
degraded, so a store hiccup never fails a user's request. For a remote store (one that sets
``Store.remote``: Redis, PostgreSQL) every read runs in a small per-process thread pool and the
request waits at most ``lookup_timeout`` (50 ms by default) for it: a slow store delays no
request by more than that, and at most one look-up per tenant is in flight (single-flight), so
a slow store never sees a thundering herd. Local stores (memory, SQLite) are read inline, with
no thread at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial

from cachetools import TTLCache

from . import _forksafe
from ._clock import SYSTEM, Clock
from .errors import CohortRouteError, StoreError
from .policy import Policy, TenantRecord
from .store.base import Store

log = logging.getLogger(__name__)

LOG_EVERY = 30.0  # seconds between repeated log lines about store failures
_MAX_INFLIGHT = 256  # distinct tenant look-ups queued at once before new misses get the default


def _retrieve(future: asyncio.Future[TenantRecord]) -> None:
    if not future.cancelled():
        future.exception()


class StateView:
    """Cached, failure-tolerant reads of one store for one router.

    ``on_change`` is called (from any thread) whenever decisions made so far may be stale: the
    revision moved, or the store answered again after an outage. ``clock`` times the record
    cache's TTL and the rate limit of the degraded-mode log line.
    """

    def __init__(
        self,
        store: Store,
        versions: Sequence[str],
        default: str,
        *,
        on_change: Callable[[], None],
        lookup_timeout: float = 0.05,
        record_cache_size: int = 100_000,
        record_ttl: float = 300.0,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self._versions = list(versions)
        self._default = default
        self._on_change = on_change
        self.lookup_timeout = lookup_timeout
        self._remote = bool(getattr(store, "remote", False))
        self._lock = threading.Lock()
        self._registered = False
        self.policy = Policy(default=None, versions=frozenset(versions), revision=-1)
        self.revision = -1
        self.degraded = False
        self.last_error: str | None = None
        self.errors = 0
        self._clock = clock
        self._last_log: float | None = None
        self._generation = 0
        self._records: TTLCache[str, TenantRecord] = TTLCache(
            record_cache_size, record_ttl, timer=clock.monotonic
        )
        # Every record read, kept across revisions (bounded: starts over when full). Answers
        # only when the store cannot: a revision bump empties ``_records``, and an outage right
        # after one must not turn known tenants into default ones.
        self._last_known: dict[str, TenantRecord] = {}
        self._stale_answers = False  # answered from _last_known / default since degraded
        self._last_known_size = record_cache_size
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: dict[str, Future[TenantRecord]] = {}
        self._refreshing: Future[None] | None = None
        _forksafe.register(self, after_in_child=StateView._after_fork)

    def _after_fork(self) -> None:
        # A lock held by another thread at fork time (a refresh in flight in a --preload master)
        # would stay held forever in the child, and the pool's threads do not exist there.
        self._lock = threading.Lock()
        self._executor = None
        self._inflight = {}
        self._refreshing = None

    # --- public ---------------------------------------------------------------------------

    def refresh(self, wait: bool = True) -> None:
        """Re-read the policy if the revision moved.

        A remote store is read off this thread; the caller waits at most ``lookup_timeout``
        for it, or not at all with ``wait=False`` (an event loop: the answer is applied when it
        arrives, through ``on_change``).
        """
        if not self._remote:
            self._refresh_now()
            return
        pool = self._pool()
        with self._lock:
            future = self._refreshing
            if future is None or future.done():
                future = self._refreshing = pool.submit(self._refresh_now)
        if not wait:
            return
        try:
            future.result(timeout=self.lookup_timeout)
        except FutureTimeout:
            self._failed("the store is slow; serving the last-known state meanwhile", None)

    def tenant(self, name: str) -> TenantRecord | None:
        """The tenant's record; when the store failed or is slow, the last one read (from an
        earlier revision), and None when nothing is known."""
        record, future = self._lookup(name)
        if future is None:
            return record
        try:
            return future.result(timeout=self.lookup_timeout)
        except FutureTimeout:
            return self._slow(name)
        except StoreError:
            return self._fallback(name)

    async def tenant_async(self, name: str) -> TenantRecord | None:
        """:meth:`tenant` for an event loop: waiting for a remote store never blocks the loop."""
        record, future = self._lookup(name)
        if future is None:
            return record
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(_retrieve)  # a late failure is expected, not "never retrieved"
        try:
            return await asyncio.wait_for(asyncio.shield(wrapped), self.lookup_timeout)
        except asyncio.TimeoutError:
            return self._slow(name)
        except StoreError:
            return self._fallback(name)

    def _lookup(self, name: str) -> tuple[TenantRecord | None, Future[TenantRecord] | None]:
        """The record if it can be had without waiting, else the in-flight remote look-up."""
        with self._lock:
            record = self._records.get(name)
            generation = self._generation
        if record is not None:
            return record, None
        if not self._remote:
            try:
                return self._load(name, generation), None
            except StoreError:
                return self._fallback(name), None
        pool = self._pool()
        with self._lock:
            future = self._inflight.get(name)
            started = future is None
            if future is None:
                if len(self._inflight) >= _MAX_INFLIGHT:
                    return self._fallback(name), None
                future = pool.submit(self._load, name, generation)
                self._inflight[name] = future
        if started:
            # Not under the lock: a look-up that already failed (a store refusing at once) runs
            # the callback right here, and _forget takes the lock, which is not reentrant.
            future.add_done_callback(partial(self._forget, name))
        return None, future

    def _slow(self, name: str) -> TenantRecord | None:
        self._failed("the store is slow; new tenants get the default meanwhile", None)
        return self._fallback(name)

    def count_error(self) -> None:
        """Count a store error the view did not see itself (a caller found the state unusable)."""
        self.errors += 1

    def close(self) -> None:
        """Stop this process's look-up threads (a later look-up starts them again)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._inflight = {}
            self._refreshing = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # --- internals --------------------------------------------------------------------------

    def _fallback(self, name: str) -> TenantRecord | None:
        """The last record read for ``name`` (any revision) when the store cannot answer now.

        Decisions made from it may be stale, so the router's cache is dropped on recovery.
        """
        self._stale_answers = True
        return self._last_known.get(name)

    def _pool(self) -> ThreadPoolExecutor:
        # Created lazily: after close(), and in a forked child (see _after_fork).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="cohortroute-store")
        return self._executor

    def _forget(self, name: str, future: object = None) -> None:
        with self._lock:
            if future is None or self._inflight.get(name) is future:
                self._inflight.pop(name, None)

    def _load(self, name: str, generation: int) -> TenantRecord:
        try:
            record = self.store.tenant(name)
        except StoreError as exc:
            self._failed("could not read a tenant from the store; serving the default", exc)
            raise
        except Exception as exc:  # a custom store's bug must not fail the request either
            self._failed("the store raised an unexpected error", exc)
            raise StoreError(str(exc)) from exc
        with self._lock:
            if generation == self._generation:
                self._records[name] = record
                if len(self._last_known) >= self._last_known_size:
                    self._last_known.clear()
                self._last_known[name] = record
        return record

    def _refresh_now(self) -> None:
        try:
            if not self._registered:
                self.store.register_versions(
                    self._versions, self._default, actor="cohortroute-router"
                )
                self._registered = True
            revision = self.store.revision()
            if revision == self.revision:
                if self._recovered():
                    self._on_change()
                return
            policy = self.store.policy()
            if policy.default is None or not policy.versions.issuperset(self._versions):
                # The store lost what this router recorded (a server restarted empty, an old
                # backup restored): record it again, or pins to our versions fail as unknown.
                self.store.register_versions(
                    self._versions, self._default, actor="cohortroute-router"
                )
                policy = self.store.policy()
        except StoreError as exc:
            self._failed("could not read the store; serving the last-known state", exc)
            return
        except Exception as exc:  # a custom store's bug: keep serving, say so
            self._failed("the store raised an unexpected error", exc)
            return
        with self._lock:
            self.policy = policy
            self.revision = policy.revision
            self._generation += 1
            self._records.clear()
        self._recovered()
        self._on_change()

    def _failed(self, what: str, exc: BaseException | CohortRouteError | None) -> None:
        self.degraded = True
        self.errors += 1
        self.last_error = what if exc is None else f"{what}: {exc}"
        now = self._clock.monotonic()
        if self._last_log is None or now - self._last_log >= LOG_EVERY:
            self._last_log = now
            log.error("cohortroute degraded: %s", self.last_error)

    def _recovered(self) -> bool:
        """Leave degraded mode; True when decisions made meanwhile may be stale.

        Only answers given from the last-known state (or the default) are suspect: a store that
        was merely slow for a moment does not cost the router its whole cache.
        """
        if not self.degraded:
            return False
        self.degraded = False
        self.last_error = None
        log.warning("cohortroute recovered: the store answers again")
        stale, self._stale_answers = self._stale_answers, False
        return stale

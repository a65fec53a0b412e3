"""The router's view of the store: the policy per revision, tenant records, and degraded mode.

The hot path never calls the store. A router asks this view for a tenant's record only on a
decision-cache miss, and asks it at most once per refresh interval whether the revision moved.

When the store fails, the view keeps answering from the last state it saw and reports itself
degraded, so a store hiccup never fails a user's request. For a remote store (one that sets
``Store.remote``: Redis, PostgreSQL) every read runs in a small per-process thread pool and the
request waits at most ``lookup_timeout`` (50 ms by default) for it: a slow store delays no
request by more than that. Tenant look-ups are batched and single-flight
(:mod:`cohortroute.batch_reads`), and when the revision moves the records of every tenant this
router has cached are re-read in one batch *before* the new state is used, so nobody misses at
once and the time a change takes to show does not grow with the number of active tenants. A
record answered from the last-known state because the store was slow is never taken for fresh:
when the real one arrives and differs, decisions are dropped. Local stores (memory, SQLite) are
read inline, with no thread at all.

A revision that moved only because routers registered tenants (audited as
:data:`SERVED_ACTION`) or migration runners renewed their leases changes no decision, so the
view confirms it from the audit log and keeps its state. While a gated rollout runs, a view that
has not confirmed the revision for :func:`cohortroute.fail_closed.horizon` seconds fails closed
(:meth:`StateView.guard`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

import anyio.to_thread
from cachetools import TTLCache

from . import _forksafe
from ._clock import SYSTEM, Clock
from .batch_reads import BATCH, BatchReader
from .decision import Decision
from .errors import CohortRouteError, StoreError
from .fail_closed import reachable
from .policy import Policy, TenantRecord
from .store.base import Store
from .tenant_state import LEASE_RENEWED_ACTION

log = logging.getLogger(__name__)

LOG_EVERY = 30.0  # seconds between repeated log lines about store failures
#: The audit action of routers' tenant registrations: a revision made only of these changes no
#: decision, so views keep their caches.
SERVED_ACTION = "tenants-served"
# Audit actions that change no decision: a revision made only of these keeps every cache.
_NEUTRAL_ACTIONS = frozenset({SERVED_ACTION, LEASE_RENEWED_ACTION})
# How many revisions a view checks in the audit log before it simply re-reads the state.
_NEUTRAL_SCAN = 32
# Fewer cached tenants than this are not re-read in a batch when the revision moves.
_REREAD_MIN = 8


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
        horizon: float | None = None,
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
        self._reader = BatchReader(self._read_batch, self._pool)
        self._guessed: dict[str, TenantRecord] = {}  # answered from a fallback
        self._refreshing: Future[None] | None = None
        #: Seconds without a confirmed revision before failing closed in a gated rollout.
        self.horizon = horizon
        self._confirmed_at: float | None = None  # when the last confirmed revision was asked
        #: True while failing closed (see :meth:`guard`).
        self.holding = False
        _forksafe.register(self, after_in_child=StateView._after_fork)

    def _after_fork(self) -> None:
        # A lock held by another thread at fork time (a refresh in flight in a --preload master)
        # would stay held forever in the child, and the pool's threads do not exist there.
        self._lock = threading.Lock()
        self._executor = None
        self._reader.reset()
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

    def hold_at(self) -> float | None:
        """When (``clock.monotonic()``) this view fails closed unless it confirms the revision
        first; None when it would not (no gated rollout, already holding, no horizon)."""
        rollout = self.policy.rollout
        if self.holding or self.horizon is None or rollout is None or not rollout.gated:
            return None
        confirmed = self._confirmed_at
        return None if confirmed is None else confirmed + self.horizon

    def check_horizon(self, now: float) -> None:
        """Fail closed when the revision was not confirmed for ``horizon`` seconds (``now`` on
        the clock's ``monotonic()``) while a gated rollout runs; decisions are dropped when
        this starts, and again when a confirmed revision ends it."""
        at = self.hold_at()
        if at is None or now < at:
            return
        with self._lock:
            if self.holding:
                return
            self.holding = True
        log.error(
            "cohortroute: the store's state was not confirmed for %.1f s during a gated "
            "rollout: tenants the rollout can reach get 503 until it answers again",
            now - (self._confirmed_at or now),
        )
        self._on_change()

    def guard(self, decision: Decision, record: TenantRecord | None) -> Decision:
        """``decision``, or a 503 one while failing closed and the gated rollout can reach the
        tenant (its data may have moved while this router could not see it)."""
        if not self.holding or decision.maintenance or record is None:
            return decision
        if not reachable(self.policy.rollout, decision, record):
            return decision
        return replace(
            decision,
            maintenance=True,
            detail="this router cannot confirm the store's state during a migration; retry",
        )

    def _left(self, waited: float) -> float:
        """What is left of ``lookup_timeout`` for a request that waited ``waited`` seconds."""
        return max(0.0, self.lookup_timeout - waited) if waited > 0 else self.lookup_timeout

    def tenant(self, name: str, waited: float = 0.0) -> TenantRecord | None:
        """The tenant's record; when the store failed or is slow, the last one read (from an
        earlier revision), and None when nothing is known. ``waited``: seconds the request
        already waited for the store (a refresh): it waits at most ``lookup_timeout`` in all."""
        record, future = self._lookup(name)
        if future is None:
            return record
        try:
            return future.result(timeout=self._left(waited))
        except FutureTimeout:
            return self._slow(name)
        except StoreError:
            return self._fallback(name)

    async def tenant_async(self, name: str, waited: float = 0.0) -> TenantRecord | None:
        """:meth:`tenant` for an event loop: waiting for a remote store never blocks the loop."""
        record, future = self._lookup(name)
        if future is None:
            return record
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): wait on one of anyio's threads
            return await self._tenant_off_loop(name, future, self._left(waited))
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(_retrieve)  # a late failure is expected, not "never retrieved"
        try:
            return await asyncio.wait_for(asyncio.shield(wrapped), self._left(waited))
        except asyncio.TimeoutError:
            return self._slow(name)
        except StoreError:
            return self._fallback(name)

    async def _tenant_off_loop(
        self, name: str, future: Future[TenantRecord], timeout: float
    ) -> TenantRecord | None:
        """Wait for ``future`` on a worker thread, at most ``timeout`` (any anyio loop)."""
        try:
            return await anyio.to_thread.run_sync(future.result, timeout)
        except FutureTimeout:
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
        future = self._reader.get(name)
        if future is None:
            return self._fallback(name), None
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
            self._refreshing = None
        self._reader.reset()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # --- internals --------------------------------------------------------------------------

    def _fallback(self, name: str) -> TenantRecord | None:
        """The last record read for ``name`` (any revision) when the store cannot answer now.

        Decisions made from it may be stale, so the router's cache is dropped on recovery, or
        as soon as the real record arrives and differs.
        """
        self._stale_answers = True
        record = self._last_known.get(name)
        if record is not None:  # no record: the router does not cache the decision at all
            self._guessed[name] = record
        return record

    def _pool(self) -> ThreadPoolExecutor:
        # Created lazily: after close(), and in a forked child (see _after_fork).
        if self._executor is None:
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="cohortroute-store")
        return self._executor

    def _load(self, name: str, generation: int) -> TenantRecord:
        return self._read([name], generation)[name]

    def _read_batch(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        with self._lock:
            generation = self._generation
        return self._read(names, generation)

    def _read(self, names: Sequence[str], generation: int) -> dict[str, TenantRecord]:
        """Read ``names`` from the store and keep them, unless the state moved on meanwhile."""
        try:
            records = (
                self.store.read_tenants(names)
                if len(names) > 1
                else {names[0]: self.store.tenant(names[0])}
            )
        except StoreError as exc:
            self._failed("could not read a tenant from the store; serving the default", exc)
            raise
        except Exception as exc:  # a custom store's bug must not fail the request either
            self._failed("the store raised an unexpected error", exc)
            raise StoreError(str(exc)) from exc
        guessed_wrong = False
        with self._lock:
            if generation == self._generation:
                self._keep(records)
            for name, record in records.items():
                if name in self._guessed:
                    guessed_wrong |= self._guessed.pop(name) != record
        if guessed_wrong:
            self._on_change()  # decisions made from the guess are cached: drop them
        return records

    def _keep(self, records: dict[str, TenantRecord]) -> None:
        """Cache ``records`` as fresh (call under the lock)."""
        if len(self._last_known) + len(records) > self._last_known_size:
            self._last_known.clear()
        for name, record in records.items():
            self._records[name] = record
            self._last_known[name] = record

    def _reread(self, names: list[str]) -> dict[str, TenantRecord]:
        """The current records of ``names``, in batches (raises StoreError)."""
        records: dict[str, TenantRecord] = {}
        for start in range(0, len(names), BATCH):
            records.update(self.store.read_tenants(names[start : start + BATCH]))
        return records

    def _neutral(self, old: int, new: int) -> bool:
        """True when the audit log shows that every revision after ``old`` up to ``new`` only
        registered tenants or renewed migration leases (which change no decision)."""
        gap = new - old
        if old < 0 or gap <= 0 or gap > _NEUTRAL_SCAN:
            return False
        try:
            entries = self.store.history(limit=gap + 1)
        except Exception:  # cannot tell: re-read the state, as for any other change
            log.debug("cohortroute: could not read the audit log", exc_info=True)
            return False
        newer = [e for e in entries if e.revision > old]
        complete = len(entries) <= gap or len(newer) < len(entries)
        return (
            complete
            and all(e.action in _NEUTRAL_ACTIONS for e in newer)
            and {e.revision for e in newer} == set(range(old + 1, new + 1))
        )

    def _refresh_now(self) -> None:
        asked = self._clock.monotonic()
        try:
            if not self._registered:
                self.store.mount_versions(self._versions, self._default, actor="cohortroute-router")
                self._registered = True
            revision = self.store.revision()
            if revision == self.revision:
                self._confirmed(asked)
                if self._recovered():
                    self._on_change()
                return
            policy, records, neutral = self._read_state(revision)
            if policy.default is None or not policy.versions.issuperset(self._versions):
                # The store lost what this router recorded (a server restarted empty, an old
                # backup restored): record it again, or pins to our versions fail as unknown.
                self.store.mount_versions(self._versions, self._default, actor="cohortroute-router")
                policy, neutral = self.store.policy(), False
        except StoreError as exc:
            self._failed("could not read the store; serving the last-known state", exc)
            return
        except Exception as exc:  # a custom store's bug: keep serving, say so
            self._failed("the store raised an unexpected error", exc)
            return
        with self._lock:
            self.policy = policy
            self.revision = policy.revision
            if not neutral:
                self._generation += 1
                self._records.clear()
                self._guessed.clear()
            if records is not None:
                self._keep(records)
        self._confirmed(asked)
        stale = self._recovered()
        if stale or not neutral:
            self._on_change()

    def _read_state(self, revision: int) -> tuple[Policy, dict[str, TenantRecord] | None, bool]:
        """The policy, the fresh records of the cached tenants (remote stores), and whether
        every revision up to ``revision`` only registered tenants (raises StoreError)."""
        if not self._remote:
            if self._neutral(self.revision, revision):
                return replace(self.policy, revision=revision), None, True
            return self.store.policy(), None, False
        # The audit log is read while the policy and every cached tenant's record are, and all
        # before the new state is used: a change shows after the same few round trips however
        # many tenants are active, and nobody misses afterwards.
        neutral = self._pool().submit(self._neutral, self.revision, revision)
        policy = self.store.policy()
        with self._lock:
            names = list(self._records.keys())
        # A few tenants are read again as they are asked for (batched all the same), which
        # shows a change on the very request that notices it.
        records = self._reread(names) if len(names) > _REREAD_MIN else None
        return policy, records, neutral.result() and policy.revision == revision

    def _confirmed(self, asked: float) -> None:
        """The revision was confirmed as of ``asked``; stop failing closed."""
        self._confirmed_at = max(asked, self._confirmed_at or asked)
        if self.holding:
            self.holding = False
            log.warning("cohortroute: the store's state is confirmed again; serving normally")
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

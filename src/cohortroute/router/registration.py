"""Tenant registration: the router records the tenants it serves in the store's registry.

The rollout controller can only move tenants it knows. A tenant is queued when the app answers
it with a status below 400 (a flood of random subdomains, which the app 404s, never grows the
registry), and the queue is written in one batched write at least :data:`REGISTER_DELAY` seconds
after the first of them was served, because every write makes every router drop its cache.

The write runs on one worker thread per router, off the request path. The worker holds only a
weak reference to its :class:`Registrar`, so a router that is dropped takes its worker with it,
and the worker is restarted lazily in a forked child and after :meth:`Registrar.close`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable

from .. import _forksafe
from .._clock import SYSTEM, Clock
from .._types import (
    ASGIApp,
    Message,
    OptExcInfo,
    Receive,
    Scope,
    Send,
    StartResponse,
    WSGIApp,
    WSGIEnvironment,
)
from ..store.base import Store
from ..tenancy import is_valid_label

log = logging.getLogger(__name__)

#: Seconds between the first newly served tenant and the batched write that records it.
REGISTER_DELAY = 1.0
# At most this many tenants wait for the write; more are picked up after the next cache drop.
MAX_PENDING = 10_000
ACTOR = "cohortroute-router"


class _Wakeup:
    """What a worker shares with its registrar (never the registrar itself)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.event.set()


def _work(ref: weakref.ReferenceType[Registrar], wakeup: _Wakeup) -> None:
    while True:
        wakeup.event.wait()
        wakeup.event.clear()
        registrar = ref()
        if wakeup.stopped or registrar is None:
            return
        try:
            registrar.flush()
        except Exception:  # the worker must outlive one bad write; flush logs store errors
            log.exception("tenant registration failed")
        del registrar


class Registrar:
    """Batches the tenants one router served and writes them to the store's registry.

    ``clock`` decides when a batch is due; the router calls :meth:`poke` at every refresh, so
    no timer thread waits on real time. :meth:`flush` writes at once (the worker calls it).
    """

    def __init__(self, store: Store, *, clock: Clock = SYSTEM, delay: float = REGISTER_DELAY):
        self._store = store
        self._clock = clock
        self._delay = delay
        self._pending: set[str] = set()
        self._due: float | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wakeup: _Wakeup | None = None
        _forksafe.register(self, after_in_child=Registrar._after_fork)

    def _after_fork(self) -> None:
        # The worker thread does not exist in the child, and a lock it held stays held.
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wakeup = None

    @property
    def pending(self) -> frozenset[str]:
        """The tenants waiting for the next write."""
        return frozenset(self._pending)

    @property
    def due(self) -> float | None:
        """When (on the clock's ``monotonic()``) the waiting tenants are written; None: none."""
        return self._due

    def add(self, tenant: str) -> None:
        """The app served ``tenant`` successfully: record it with the next batched write.

        Called on the request path (until the tenant is registered and the cache drops), so it
        takes no lock: a tenant added twice in a race is written once (a set).
        """
        if tenant in self._pending or len(self._pending) >= MAX_PENDING:
            return
        self._pending.add(tenant)
        if self._due is None:
            self._due = self._clock.monotonic() + self._delay

    def poke(self, now: float) -> None:
        """Hand the batch to the worker when it is due at ``now`` (``clock.monotonic()``)."""
        due = self._due
        if due is not None and now >= due:
            self._due = None
            self._wake()

    def flush(self) -> int:
        """Write the waiting tenants now, in one batch; returns how many were written.

        A failed write is logged and the tenants wait for the next attempt: the registry is
        never worth failing anything over.
        """
        with self._flushing:
            pending, self._pending = self._pending, set()
            # A custom tenant_resolver may return names the registry cannot hold: skip those.
            names = sorted(name for name in pending if is_valid_label(name.lower()))
            if not names:
                return 0
            try:
                self._store.register_tenants(names, actor=ACTOR)
            except Exception as exc:
                log.warning("cohortroute: could not register %d tenants: %s", len(names), exc)
                if len(self._pending) < MAX_PENDING:
                    self._pending.update(names)
                    self._due = self._clock.monotonic() + self._delay
                return 0
            return len(names)

    def close(self) -> None:
        """Stop the worker (a later batch starts it again); waiting tenants stay queued."""
        with self._lock:
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.stop()

    def _wake(self) -> None:
        with self._lock:
            wakeup = self._wakeup
            if wakeup is None:
                wakeup = self._wakeup = _Wakeup()
                weakref.finalize(self, wakeup.stop)
                threading.Thread(
                    target=_work,
                    args=(weakref.ref(self), wakeup),
                    name="cohortroute-register",
                    daemon=True,
                ).start()
        wakeup.event.set()


def watch_wsgi(app: WSGIApp, tenant: str, served: Callable[[str], None]) -> WSGIApp:
    """``app``, calling ``served(tenant)`` when it answers with a status below 400."""

    def watched(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if status[:1] in ("1", "2", "3"):
                served(tenant)
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return watched


def watch_asgi(app: ASGIApp, tenant: str, served: Callable[[str], None]) -> ASGIApp:
    """``app``, calling ``served(tenant)`` on a response below 400 or an accepted websocket."""

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def watching_send(message: Message) -> None:
            kind = message["type"]
            if (kind == "http.response.start" and int(message["status"]) < 400) or (
                kind == "websocket.accept"
            ):
                served(tenant)
            await send(message)

        await app(scope, receive, watching_send)

    return watched


__all__ = ["MAX_PENDING", "REGISTER_DELAY", "Registrar", "watch_asgi", "watch_wsgi"]

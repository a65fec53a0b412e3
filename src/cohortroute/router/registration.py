"""Tenant registration: the router records the tenants it serves in the store's registry.

The rollout controller can only move (and ratchet) tenants it knows. A tenant is queued when the
app answers it with a status below 400 (a flood of random subdomains, which the app 404s, never
grows the registry), and the queue is written in one batched write :data:`REGISTER_DELAY`
seconds after the first of them was served -- whether or not any request follows, so a tenant
served once and then quiet is registered too.

The write runs off the request path, on one worker thread per router (:mod:`cohortroute._worker`)
that waits for the batch on the router's clock. The worker holds its :class:`Registrar` only
weakly, so a router that is dropped takes its worker with it; it is started lazily, so a forked
child starts its own. What is still queued is also written by :meth:`Registrar.close` and when the
process exits (:mod:`._exit`). A process killed with SIGKILL loses at most the tenants it first
served in its last :data:`REGISTER_DELAY` seconds (plus the time one write takes).

Registration is rate-bounded: each router queues at most :data:`REGISTER_LIMIT` tenants per
:data:`REGISTER_WINDOW` seconds, so an app that answers every subdomain 200 cannot flood the
registry; tenants over the cap are counted (:attr:`Registrar.dropped`) and queued again the next
time they are served. Registration writes are audited as :data:`ACTION`, which routers know
changes no decision: they never drop their decision caches for one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable

from .. import _forksafe, _worker, changes
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
from ..state_view import SERVED_ACTION
from ..store.base import Store
from ..tenancy import is_valid_label
from . import _exit

log = logging.getLogger(__name__)

#: Seconds between the first newly served tenant and the batched write that records it.
REGISTER_DELAY = 1.0
#: At most this many tenants are queued per router per :data:`REGISTER_WINDOW`.
REGISTER_LIMIT = 1_000
#: Seconds over which :data:`REGISTER_LIMIT` counts.
REGISTER_WINDOW = 60.0
#: Kept for callers that read it: the queue never holds more than :data:`REGISTER_LIMIT`.
MAX_PENDING = REGISTER_LIMIT
# Tenants this router wrote (or found registered), so serving them again costs one set look-up.
_MAX_KNOWN = 100_000
ACTOR = "cohortroute-router"
ACTION = SERVED_ACTION


class Registrar:
    """Batches the tenants one router served and writes them to the store's registry.

    ``clock`` times the batch and the rate window; the worker waits on it, so a test advances a
    :class:`~cohortroute._clock.ManualClock` instead of sleeping. :meth:`flush` writes at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = SYSTEM,
        delay: float = REGISTER_DELAY,
        limit: int = REGISTER_LIMIT,
        window: float = REGISTER_WINDOW,
        on_written: Callable[[set[str]], None] | None = None,
    ):
        self._store = store
        # Held weakly: the router owns its registrar, and must not be kept alive by it.
        self._on_written = None if on_written is None else weakref.WeakMethod(on_written)
        self._clock = clock
        self._delay = delay
        self._limit = limit
        self._window = window
        self._window_start = clock.monotonic()
        self._window_used = 0
        #: Tenants refused because the rate cap was reached (each refusal counts).
        self.dropped = 0
        self._pending: set[str] = set()
        self._known: set[str] = set()
        self._due: float | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._worker = _worker.Worker(
            self._clock, name="cohortroute-register", what="tenant registration"
        )
        _forksafe.register(self, after_in_child=Registrar._after_fork)
        _exit.flush_at_exit(self)

    def _after_fork(self) -> None:
        # The worker thread does not exist in the child, and a lock it held stays held.
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._worker.forget()

    @property
    def pending(self) -> frozenset[str]:
        """The tenants waiting for the next write."""
        return frozenset(self._pending)

    @property
    def due(self) -> float | None:
        """When (on the clock's ``monotonic()``) the waiting tenants are written; None: none."""
        return self._due

    def until_due(self) -> float | None:
        """Seconds until the waiting tenants are written (0.0: now); None when none wait."""
        due = self._due
        return None if due is None else max(0.0, due - self._clock.monotonic())

    def add(self, tenant: str) -> None:
        """The app served ``tenant`` successfully: record it with the next batched write.

        Called on the request path for tenants not registered yet; a tenant already queued or
        written costs two set look-ups and takes no lock.
        """
        if tenant in self._pending or tenant in self._known:
            return
        with self._lock:
            if tenant in self._pending:
                return
            now = self._clock.monotonic()
            if now - self._window_start >= self._window:
                self._window_start, self._window_used = now, 0
            if self._window_used >= self._limit:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % self._limit == 0:
                    log.warning(
                        "cohortroute: %d tenants not registered: this router registers at most "
                        "%d new tenants per %g s (does the app answer unknown subdomains with "
                        "200? answer them 404)",
                        self.dropped,
                        self._limit,
                        self._window,
                    )
                return
            self._window_used += 1
            self._pending.add(tenant)
            if self._due is not None:
                return
            self._due = now + self._delay
            wakeup = self._worker.running(self)
        wakeup.event.set()

    def poke(self, now: float) -> None:
        """Have the worker write the batch at once if it is due at ``now`` (on the clock's
        ``monotonic()``); without a poke the worker writes it when it falls due."""
        due = self._due
        if due is not None and now >= due:
            with self._lock:
                if self._due is not None:
                    self._due = min(self._due, self._clock.monotonic())
                wakeup = self._worker.running(self)
            wakeup.event.set()

    def flush(self) -> int:
        """Write the waiting tenants now, in one batch; returns how many were new.

        A failed write is logged and the tenants wait for the next attempt, one delay later:
        the registry is never worth failing anything over.
        """
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, set()
                self._due = None
            # A custom tenant_resolver may return names the registry cannot hold: skip those
            # (and remember them, so serving them again does not use up the rate cap).
            names = sorted(name for name in pending if is_valid_label(name.lower()))
            self._remember(pending.difference(names))
            if not names:
                return 0
            new: set[str] = set()
            update, describe = changes.registration(None, new, self._store.clock)
            try:
                self._store.update_tenants(
                    names, ACTION, update, describe=describe, audit_each=False, actor=ACTOR
                )
            except Exception as exc:
                log.warning("cohortroute: could not register %d tenants: %s", len(names), exc)
                with self._lock:
                    self._pending.update(names)
                    if self._due is None:
                        self._due = self._clock.monotonic() + self._delay
                return 0
            self._remember(names)
            callback = None if self._on_written is None else self._on_written()
            if callback is not None:
                callback(set(names))
            return len(new)

    def _remember(self, names: Iterable[str]) -> None:
        names = set(names)
        if len(self._known) + len(names) > _MAX_KNOWN:
            self._known = set()  # start over rather than evict: bounded, and O(1) to check
        self._known.update(names)

    def close(self) -> None:
        """Write what is queued, then stop the worker (a later batch starts it again)."""
        _worker.flush_then_stop(self, self._worker)


def watch_wsgi(app: WSGIApp, tenant: str, served: Callable[[str], None]) -> WSGIApp:
    """``app``, calling ``served(tenant)`` when it answers with a status below 400
    (``watched_app`` is ``app``)."""

    def watched(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if status[:1] in ("1", "2", "3"):
                served(tenant)
            return start_response(status, headers, exc_info)

        return app(environ, start)

    watched.watched_app = app  # type: ignore[attr-defined]
    return watched


def watch_asgi(app: ASGIApp, tenant: str, served: Callable[[str], None]) -> ASGIApp:
    """``app``, calling ``served(tenant)`` on a response below 400 or an accepted websocket
    (``watched_app`` is ``app``)."""

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def watching_send(message: Message) -> None:
            kind = message["type"]
            if (kind == "http.response.start" and int(message["status"]) < 400) or (
                kind == "websocket.accept"
            ):
                served(tenant)
            await send(message)

        await app(scope, receive, watching_send)

    watched.watched_app = app  # type: ignore[attr-defined]
    return watched


__all__ = [
    "ACTION",
    "MAX_PENDING",
    "REGISTER_DELAY",
    "REGISTER_LIMIT",
    "REGISTER_WINDOW",
    "Registrar",
    "watch_asgi",
    "watch_wsgi",
]

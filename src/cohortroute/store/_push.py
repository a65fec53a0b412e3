"""What the network stores (Redis, PostgreSQL) share: the push listener and fork hygiene.

A push store runs one daemon listener thread per process that turns the server's change
notifications (pub/sub, LISTEN/NOTIFY) into :meth:`Store._notify`. The listener reconnects with
back-off and notifies once after every (re)connection, because pushes sent while it was
disconnected are lost. After ``fork`` the child forgets the parent's connections and listener.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from .base import Store

log = logging.getLogger("cohortroute.store")

# How often a listener wakes up to check whether it should stop, and its reconnect back-off.
POLL = 0.1
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0
# A session that stayed up this long was healthy: the next outage starts the back-off afresh.
_HEALTHY_SESSION = 5.0

# Push stores alive in this process, so a fork can reset them before anything else runs.
_LIVE: weakref.WeakSet[PushStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_LIVE):
        store._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


class PushListener(abc.ABC):
    """One daemon thread: a session with the server that calls ``store._notify()`` per push.

    It holds the store by weak reference, so a store dropped without ``close()`` still stops its
    thread. Subclasses set up their connection parameters, then call :meth:`start`.
    """

    #: What the log lines call the store ("Redis", "PostgreSQL").
    kind = "network"

    def __init__(
        self,
        store: Store,
        *,
        name: str,
        url: str,
        join_timeout: float,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._store = weakref.ref(store)
        self._url = url
        self._join_timeout = join_timeout
        self._errors = errors
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (after the subclass has finished setting up)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (it closes its own connection)."""
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._join_timeout)

    @abc.abstractmethod
    def _session(self) -> bool:
        """Connect, subscribe, notify once, then per push until stopping; False once the store
        is gone (the thread ends), True to reconnect."""

    def _stopped(self) -> bool:
        return self._stopping.is_set()

    def _notify(self) -> bool:
        """Tell the store's subscribers; False when the store is gone."""
        store = self._store()
        if store is None:
            return False
        try:
            store._notify()
        except Exception:
            log.exception("a store change callback failed")
        return True

    def _run(self) -> None:
        delay = _BACKOFF_MIN
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                if not self._session():
                    return
            except self._errors as exc:
                log.warning(
                    "lost the push connection to the %s store at %s (%s); retrying in %.1fs",
                    self.kind,
                    self._url,
                    " ".join(str(exc).split()),
                    delay,
                )
            except Exception:  # a bug must not end pushes for good: log it and start over
                log.exception("the %s listener for %s failed; restarting it", self.kind, self._url)
            if time.monotonic() - started > _HEALTHY_SESSION:
                delay = _BACKOFF_MIN
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, _BACKOFF_MAX)


class PushStore(Store):
    """A store whose server pushes changes; its listener starts lazily, in the using process."""

    push: bool = True

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._listener: PushListener | None = None
        self._push_wanted = False
        _LIVE.add(self)

    @abc.abstractmethod
    def _new_listener(self) -> PushListener:
        """A started listener for this store."""

    def _forget_parent(self) -> None:
        """Drop what a fork inherited; subclasses drop their connections too.

        The lock is replaced: one held by a parent's thread at the fork would never be freed
        (the base Store replaces its listeners lock itself).
        """
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._listener = None

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change, including other processes' (pushed)."""
        super().subscribe(callback)
        if self._pid != os.getpid():
            self._forget_parent()
        self._push_wanted = self.push
        self._start_listener()

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is None and self._push_wanted:
                self._listener = self._new_listener()

    def _take_listener(self) -> PushListener | None:
        """Stop wanting pushes and hand back the listener to stop (call under ``_lock``)."""
        listener, self._listener = self._listener, None
        self._push_wanted = False
        return listener

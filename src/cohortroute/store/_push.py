"""The push listener of the network stores: server notifications become change callbacks.

A push store runs one daemon listener thread per process that turns the server's change
notifications (pub/sub, LISTEN/NOTIFY) into :meth:`Store._notify`. The listener reconnects with
back-off and notifies once after every (re)connection, because pushes sent while it was
disconnected are lost.

An outage is logged without flooding: the lost connection once at WARNING, then at most one
WARNING every :data:`REPEAT_WARNING` seconds saying how many attempts failed since (the others
at DEBUG), and one WARNING when it is back.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
import weakref

from .._backoff import Backoff
from .base import Store

log = logging.getLogger(__name__)

# How often a listener wakes up to check whether it should stop.
POLL = 0.1
# A session that stayed up this long was healthy: the next outage starts the back-off afresh.
_HEALTHY_SESSION = 5.0
#: While the store stays down, at most one WARNING per this many seconds (every worker logs).
REPEAT_WARNING = 300.0


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
        self._monotonic = time.monotonic  # tests give a manual clock's
        self._failures = 0  # failed attempts since the connection was lost
        self._down_since = 0.0
        self._warned_at = 0.0

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

    def inherited(self) -> object | None:
        """The connection a fork's child must keep open but never use (None if no such)."""
        return None

    def _stopped(self) -> bool:
        return self._stopping.is_set()

    def _notify(self) -> bool:
        """Tell the store's subscribers; False when the store is gone."""
        store = self._store()
        if store is None:
            return False
        if self._failures:  # a session notifies once when it (re)connects
            log.warning(
                "the push connection to the %s store at %s is back, after %d failed attempts "
                "in %.0f s",
                self.kind,
                self._url,
                self._failures,
                self._monotonic() - self._down_since,
            )
            self._failures = 0
        try:
            store._notify()
        except Exception:
            log.exception("a store change callback failed")
        return True

    def _run(self) -> None:
        backoff = Backoff(minimum=0.1, maximum=5.0)
        while not self._stopping.is_set():
            started = self._monotonic()
            delay = backoff.next()
            try:
                if not self._session():
                    return
            except self._errors as exc:
                self._lost(" ".join(str(exc).split()), delay)
            except Exception:  # a bug must not end pushes for good: log it and start over
                log.exception("the %s listener for %s failed; restarting it", self.kind, self._url)
            if self._monotonic() - started > _HEALTHY_SESSION:
                backoff.reset()
                delay = backoff.next()
            if self._wait(delay):
                return

    def _wait(self, delay: float) -> bool:
        """Wait ``delay`` seconds before the next attempt; True when asked to stop meanwhile."""
        return self._stopping.wait(delay)

    def _lost(self, error: str, delay: float) -> None:
        """Log one failed attempt: the first at WARNING, then a WARNING at most every
        :data:`REPEAT_WARNING` seconds with the count since, the rest at DEBUG."""
        now = self._monotonic()
        self._failures += 1
        if self._failures == 1:
            self._down_since = self._warned_at = now
            log.warning(
                "lost the push connection to the %s store at %s (%s); retrying in %.1fs "
                "(while it stays down, logged again every %.0f minutes at most)",
                self.kind,
                self._url,
                error,
                delay,
                REPEAT_WARNING / 60,
            )
        elif now - self._warned_at >= REPEAT_WARNING:
            self._warned_at = now
            log.warning(
                "the push connection to the %s store at %s is still down: %d failed attempts "
                "in %.0f s (%s); retrying",
                self.kind,
                self._url,
                self._failures,
                now - self._down_since,
                error,
            )
        else:
            log.debug(
                "the push connection to the %s store at %s is still down (%s); retrying in %.1fs",
                self.kind,
                self._url,
                error,
                delay,
            )

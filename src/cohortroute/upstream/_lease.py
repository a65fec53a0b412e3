"""Pooled clients lent to the requests using them, so a pool can be closed while requests run.

``Upstream.close()`` may come from any thread while responses are still streaming. Closing
their client at once would cut them off, so a closed client is only *retired*: no new request
gets it (the next one opens a fresh pool) and it is closed for real when the last request
borrowing it gives it back. Each client is kept under a key: one for the synchronous client,
the event loop for an asynchronous one (bound to the loop that made its connections).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


class Lent(Generic[C]):
    """One pooled client and how many requests are using it."""

    __slots__ = ("client", "retired", "users")

    def __init__(self, client: C) -> None:
        self.client = client
        self.users = 0
        self.retired = False


class Lender(Generic[K, C]):
    """The current client of each key, lent to requests; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[K, Lent[C]] = {}

    def borrow(self, key: K, make: Callable[[], C]) -> Lent[C]:
        """The current client of ``key`` (made now if there is none), counted as in use."""
        with self._lock:
            lent = self._current.get(key)
            if lent is None:
                lent = self._current[key] = Lent(make())
            lent.users += 1
            return lent

    def give_back(self, lent: Lent[C]) -> C | None:
        """A request is done with ``lent``: its client when that must now be closed."""
        with self._lock:
            lent.users -= 1
            return lent.client if lent.retired and lent.users == 0 else None

    def peek(self, key: K) -> C | None:
        """The current client of ``key``, without borrowing it."""
        with self._lock:
            lent = self._current.get(key)
            return None if lent is None else lent.client

    def retire(self, keys: Callable[[K], bool] | None = None) -> list[tuple[K, C]]:
        """Retire the clients of the keys ``keys`` accepts (all by default); returns the idle
        ones, to be closed now (the busy ones are returned by the last :meth:`give_back`)."""
        with self._lock:
            taken = [
                (key, lent) for key, lent in self._current.items() if keys is None or keys(key)
            ]
            for key, lent in taken:
                del self._current[key]
                lent.retired = True
            return [(key, lent.client) for key, lent in taken if lent.users == 0]

    def __len__(self) -> int:
        with self._lock:
            return len(self._current)

    def forget(self) -> None:
        """Drop every client without closing it (after a fork: the sockets are the parent's)."""
        self._lock = threading.Lock()
        self._current = {}

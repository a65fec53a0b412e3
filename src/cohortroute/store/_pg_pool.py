"""The PostgreSQL store's per-process connection pool (each connection serves one thread).

Idle connections are checked before reuse: an idle session only hears from the server when it
is going away (terminated, server shutdown), so such a connection is dropped instead of failing
the next statement.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[tuple[Any, ...]]
else:
    Conn = Any

log = logging.getLogger(__name__)

# Idle connections kept per process; more are opened when more threads write at once.
MAX_IDLE = 8


class Pool:
    """This process's connections; each serves one thread at a time."""

    def __init__(self, connect: Callable[[], Conn]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._idle: list[Conn] = []
        self._all: set[Conn] = set()
        self._closed = False

    def acquire(self) -> Conn:
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn = self._idle.pop()
                stale = is_stale(conn)
                if stale:
                    self._all.discard(conn)
            if not stale:
                return conn
            conn.close()
        conn = self._connect()
        with self._lock:
            self._all.add(conn)
        return conn

    def release(self, conn: Conn) -> None:
        """Take a connection back; a broken or mid-transaction one is closed instead."""
        healthy = not conn.closed and conn.info.transaction_status == 0  # 0 = IDLE
        with self._lock:
            keep = healthy and not self._closed and len(self._idle) < MAX_IDLE
            if keep:
                self._idle.append(conn)
            else:
                self._all.discard(conn)
        if not keep:
            conn.close()

    def close(self) -> None:
        """Close the idle connections; the busy ones are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._all.difference_update(idle)
        for conn in idle:
            conn.close()

    def abandon(self) -> list[Conn]:
        """Forget every connection without closing it (a fork's child does not own them).

        Runs in a fork's child, where the lock may have been held by a thread that no longer
        exists, so it takes no lock (the child has a single thread at that point).
        """
        self._closed = True
        conns, self._all, self._idle = list(self._all), set(), []
        return conns


def is_stale(conn: Conn) -> bool:
    """True when an idle connection is closed or has something to read: an idle session only
    hears from the server when it is going away (terminated, server shutdown), so it is dropped
    here instead of failing the next statement."""
    if conn.closed:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True

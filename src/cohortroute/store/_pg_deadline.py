"""Client-side deadlines for the PostgreSQL store: no round trip waits longer than ``timeout``.

A server (or a pooler) that accepts the connection and then never answers would otherwise
block a store call forever: the server-side ``statement_timeout`` cannot fire when the server
is what hangs, TCP keepalives are answered by its kernel, and a ``statement_timeout`` sent as a
startup option is refused by PgBouncer in transaction mode. So the bound is kept here, in the
client, whatever the server or pooler does.

How: psycopg runs every operation on a connection (a statement, fetching its rows, COMMIT,
LISTEN) as a generator that :meth:`psycopg.Connection.wait` drives, waking it at least every
0.1 s even when the socket stays silent. :class:`BoundedConnection` wraps that generator: when
one round trip outlasts the connection's ``round_trip_timeout``, the connection is closed and
:class:`NoAnswer` (an ``OperationalError``, so the store reports the server as unavailable) is
raised. A closed connection is never reused, and a transaction on it is not rolled back over the
wire (the server rolls it back when it sees the socket close). Connecting is bounded by psycopg
itself (``connect_timeout``, at least 2 s, as libpq does).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Generator
from typing import Any

log = logging.getLogger(__name__)


@functools.cache
def bounded_connection(psycopg: Any) -> Any:
    """The connection class for this psycopg module (built once; psycopg is imported lazily)."""

    class NoAnswer(psycopg.OperationalError):  # type: ignore[misc]
        """The server did not answer one round trip within the store's ``timeout``."""

    class BoundedConnection(psycopg.Connection):  # type: ignore[misc]
        """A psycopg connection whose every round trip ends within ``round_trip_timeout`` s.

        ``None`` waits as long as psycopg does (the listener waiting for notifications).
        """

        round_trip_timeout: float | None = None
        no_answer = NoAnswer

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            limit = self.round_trip_timeout
            if limit is not None:
                gen = _within(gen, self, limit)
            return super().wait(gen, *args, **kwargs)

    return BoundedConnection


def _within(gen: Generator[Any, Any, Any], conn: Any, seconds: float) -> Generator[Any, Any, Any]:
    """Drive ``gen`` as psycopg would, giving up (connection closed) after ``seconds``."""
    deadline = time.monotonic() + seconds
    try:
        state = next(gen)
        while True:
            ready = yield state
            if time.monotonic() >= deadline:
                gen.close()
                # The conversation is cut mid-message: nothing can be sent on it any more.
                conn.pgconn.finish()
                raise conn.no_answer(f"no answer from the server within {seconds:g}s")
            state = gen.send(ready)
    except StopIteration as stop:
        return stop.value

"""The PostgreSQL sink: signal and ticket tables in the store's schema, on a connection of its own.

Tables ``{table_prefix}signals`` and ``{table_prefix}tickets`` live next to the store's (in its
``schema`` when the URL names one; created, with the schema, on first use under an advisory
lock so two processes never race on the DDL). Each :meth:`PostgresSink.add` is one transaction
of ``INSERT ... ON CONFLICT DO UPDATE SET c = current.c + excluded.c`` in key order, so
concurrent writers commute and lock rows in the same order (no deadlocks). One connection per
process, shared by its threads under a lock, opened on first use; a forked child opens its own
and never touches the parent's.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ... import _forksafe
from ...errors import StoreUnavailableError
from ...store._network import kept_in_child
from ..model import SignalRow, Ticket
from ._sql import Dialect, columns, decode, decode_tickets, ticket_parameters

log = logging.getLogger(__name__)


class _Held:
    """The sink's open connection, apart from the sink so a finalizer can close it."""

    conn: Any = None
    pid = 0  # the process that opened ``conn``

    def keep(self, conn: Any) -> None:
        self.conn, self.pid = conn, _forksafe.pid()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def dropped(self) -> None:
        """The sink was collected (or the interpreter exits): close the connection, unless a
        fork nobody announced made it the parent's (closing would end the parent's session)."""
        if self.pid == _forksafe.pid():
            self.close()


class PostgresSink:
    """Signals and tickets in PostgreSQL; ``connect()`` opens an autocommit connection.

    A sink dropped without :meth:`close` still closes its connection (when it is collected).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        schema: str | None,
        table_prefix: str,
        where: str,
        driver_error: type[BaseException],
    ) -> None:
        self._connect = connect
        self.schema = schema
        self._where = where
        self._driver_error = driver_error
        qualifier = f'"{schema}".' if schema else ""
        self._dialect = Dialect(
            where=f"{qualifier}{table_prefix}", mark="%s", alias=True, collate=' COLLATE "C"'
        )
        digest = hashlib.sha1(
            f"cohortroute-signals:{qualifier}{table_prefix}".encode(), usedforsecurity=False
        ).digest()
        self._ddl_lock = int.from_bytes(digest[:8], "big", signed=True)
        self._lock = threading.Lock()
        self._held = _Held()
        self._pid = _forksafe.pid()
        _forksafe.register(self, after_in_child=PostgresSink._after_fork)
        weakref.finalize(self, _Held.dropped, self._held)

    def __repr__(self) -> str:
        return f"<PostgresSink {self._where}>"

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        conn, self._held.conn = self._held.conn, None
        if conn is not None:
            kept_in_child().append(conn)  # closing it would end the parent's session
        self._pid = _forksafe.pid()

    def _connection(self) -> Any:
        if self._pid != _forksafe.pid():
            self._after_fork()
        conn = self._held.conn
        if conn is None or conn.closed:
            conn = self._connect()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._ddl_lock,))
                    if self.schema:
                        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    for statement in self._dialect.ddl():
                        conn.execute(statement)
            except BaseException:
                conn.close()  # not kept yet, so nobody else would ever close it
                raise
            self._held.keep(conn)
        return conn

    def _use(self, doing: str, work: Callable[[Any], Any]) -> Any:
        with self._lock:
            try:
                conn = self._connection()
                return work(conn)
            except self._driver_error as exc:
                self._held.close()  # a failed session may be in any state: start afresh
                raise StoreUnavailableError(
                    f"cannot {doing} in PostgreSQL at {self._where}: {exc}"
                ) from exc

    def add(self, rows: Sequence[SignalRow]) -> None:
        if not rows:
            return

        sql, params = self._dialect.upsert_arrays(), columns(rows)

        def work(conn: Any) -> None:
            conn.execute(sql, params)  # one statement: atomic on its own

        self._use("add signal rows", work)

    def rows(
        self,
        since_minute: int,
        until_minute: int | None = None,
        versions: Collection[str] | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[SignalRow]:
        sql, params = self._dialect.select(since_minute, until_minute, versions, tenants)
        records = self._use("read signal rows", lambda conn: conn.execute(sql, params).fetchall())
        return decode(records, tenants)

    def add_ticket(self, ticket: Ticket) -> bool:
        sql = self._dialect.add_ticket()
        count = self._use(
            "add a ticket", lambda conn: conn.execute(sql, ticket_parameters(ticket)).rowcount
        )
        return bool(count == 1)

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        sql = self._dialect.select_tickets(until)
        params = [since] if until is None else [since, until]
        records = self._use("read tickets", lambda conn: conn.execute(sql, params).fetchall())
        return decode_tickets(records)

    def prune(self, before_minute: int) -> int:
        rows_sql, tickets_sql = self._dialect.prune()

        def work(conn: Any) -> int:
            with conn.transaction():
                pruned = conn.execute(rows_sql, (before_minute,)).rowcount
                pruned += conn.execute(tickets_sql, (before_minute * 60.0,)).rowcount
            return int(pruned)

        pruned: int = self._use("prune signal rows", work)
        return pruned

    def close(self) -> None:
        with self._lock:
            if self._pid != _forksafe.pid():
                self._after_fork()  # the connection is the parent's: parked, not closed
            self._held.close()

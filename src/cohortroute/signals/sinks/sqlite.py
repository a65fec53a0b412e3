"""The SQLite sink: signal and ticket tables in the store's own file, on a connection of its own.

Tables ``cohortroute_signals`` and ``cohortroute_tickets`` sit next to the store's tables (the
store never reads them). The sink has one connection per process, shared by its threads under a
lock, opened on first use (and again in a forked child, which never touches the parent's). Each
:meth:`SQLiteSink.add` is one ``BEGIN IMMEDIATE`` transaction; it waits for other writers up to
the store's ``timeout``. Commits use ``synchronous=NORMAL``: a power cut may lose the last
flush, never corrupt the file, and signals are not worth an fsync per flush.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import urllib.parse
from collections.abc import Collection, Sequence

from ... import _forksafe
from ...errors import StoreUnavailableError
from ..model import SignalRow, Ticket
from ._sql import Dialect, decode, decode_tickets, parameters, ticket_parameters

log = logging.getLogger(__name__)

_DIALECT = Dialect(where="cohortroute_", mark="?", alias=False)
# Connections a forked child inherited: kept, never used nor closed (closing could disturb the
# parent's locks).
_INHERITED: list[sqlite3.Connection] = []


class SQLiteSink:
    """Signals and tickets in the SQLite file at ``path``."""

    def __init__(self, path: str, *, timeout: float = 30.0, create: bool = True) -> None:
        self.path = path
        self.timeout = timeout
        self.create = create
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = _forksafe.pid()
        _forksafe.register(self, after_in_child=SQLiteSink._after_fork)

    def __repr__(self) -> str:
        return f"SQLiteSink({self.path!r})"

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        if self._db is not None:
            _INHERITED.append(self._db)
        self._db = None
        self._pid = _forksafe.pid()

    def _connection(self) -> sqlite3.Connection:
        if self._pid != _forksafe.pid():
            self._forget()
        db = self._db
        if db is None:
            mode = "rwc" if self.create else "rw"  # like the store: never create unless it may
            target = f"file:{urllib.parse.quote(self.path)}?mode={mode}"
            try:
                db = sqlite3.connect(
                    target,
                    uri=True,
                    timeout=self.timeout,
                    isolation_level=None,
                    check_same_thread=False,  # shared by this process's threads, under _lock
                )
                db.execute("PRAGMA synchronous = NORMAL")
                for statement in _DIALECT.ddl():
                    db.execute(statement)
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"cannot open the signal tables in {self.path}: {exc}; check that the "
                    "directory exists and is writable"
                ) from exc
            self._db = db
        return db

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> int:
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    cursor = db.executemany(sql, rows)
                    changed = cursor.rowcount
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"cannot write signals to {self.path}: {exc}") from exc
            return changed

    def add(self, rows: Sequence[SignalRow]) -> None:
        if rows:
            self._write(_DIALECT.upsert(), parameters(rows))

    def rows(
        self,
        since_minute: int,
        until_minute: int | None = None,
        versions: Collection[str] | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[SignalRow]:
        sql, params = _DIALECT.select(since_minute, until_minute, versions, tenants)
        with self._lock:
            records = self._read(sql, params)
        return decode(records, tenants)

    def _read(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot read signals from {self.path}: {exc}") from exc

    def add_ticket(self, ticket: Ticket) -> bool:
        return self._write(_DIALECT.add_ticket(), [ticket_parameters(ticket)]) == 1

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        params = [since] if until is None else [since, until]
        with self._lock:
            records = self._read(_DIALECT.select_tickets(until), params)
        return decode_tickets(records)

    def prune(self, before_minute: int) -> int:
        rows_sql, tickets_sql = _DIALECT.prune()
        return self._write(rows_sql, [(before_minute,)]) + self._write(
            tickets_sql, [(before_minute * 60.0,)]
        )

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
            if db is not None and self._pid == _forksafe.pid():
                db.close()
            elif db is not None:
                _INHERITED.append(db)

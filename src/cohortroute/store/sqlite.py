"""The SQLite store: the whole state in one local file, shared by every process on the machine.

URL forms (the part after ``sqlite://`` is an empty host followed by the path)::

    sqlite:///state.db                 state.db relative to the working directory at open time
    sqlite:///var/lib/app/state.db     var/lib/app/state.db, also relative
    sqlite:////var/lib/app/state.db    /var/lib/app/state.db, absolute (four slashes)
    sqlite:////srv/state.db?timeout=10&synchronous=normal

Options: ``timeout`` -- the longest (seconds, default 30) a call waits for another process's
write to finish before raising :class:`~cohortroute.errors.StoreUnavailableError`;
``synchronous`` -- ``full`` (default) or ``normal``, see below. A relative path is resolved once,
when the store is opened, so a later ``chdir`` does not move it.

How it stays correct with several processes (gunicorn workers, the CLI, the controller):

* The file is in WAL mode, so readers never wait for the writer. Every write runs in one
  ``BEGIN IMMEDIATE`` transaction that reads the state, applies the change, bumps the revision
  and appends the audit entries together; a crash at any point leaves the previous commit.
* A writer that finds the file locked waits (SQLite's ``busy_timeout``, in short slices) and
  then retries with jittered back-off until ``timeout``; "database is locked" never reaches the
  caller before that.
* Durability is ``synchronous=FULL``: each commit syncs the WAL, so a change reported as done
  survives a power cut or an OS crash, not only a killed process. ``NORMAL`` is as safe against
  ``kill -9`` and never corrupts the file, but may forget the last commits on power loss -- and a
  forgotten "halt" would quietly resume a rollout an operator stopped. Writes are rare (operators,
  the controller), so the fsync per write is cheap; ``?synchronous=normal`` trades it for speed.
* Connections are per thread and per process: a connection is only used by the thread and the
  process that opened it. After ``fork`` the child opens its own; an inherited connection is never
  used *nor closed* (closing it could release or break the parent's locks). Before ``os.fork``
  the forking thread's connections are closed, so a child inherits nothing in the common
  preload-then-fork case. No background threads.

Reads are per row: a ``tenants`` table keyed by name (pin and ratchet columns, tags and state as
JSON), a one-row ``state`` table holding the revision and the policy (so :meth:`revision` is one
primary-key read), and an ``audit`` table indexed by tenant. Tables are prefixed ``cohortroute_``
so the store can live inside an application's own SQLite file. The schema is versioned; a file
written by a newer schema is refused with :class:`~cohortroute.errors.SchemaError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .. import _forksafe
from .._backoff import Backoff
from ..errors import (
    ConfigurationError,
    SchemaError,
)
from ..policy import AuditEntry, Policy, TenantRecord
from ._codec import Codec, dumps, encode_policy
from ._sqlite_file import check_path, failure, is_busy, open_error, parse_url
from .base import ChangeFn, FunctionReader, Mutation, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The schema this release writes; a file with a higher number is refused.
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cohortroute_meta (
        key TEXT PRIMARY KEY,
        value NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cohortroute_state (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        revision INTEGER NOT NULL,
        policy TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS cohortroute_tenants (
        name TEXT PRIMARY KEY,
        pin TEXT,
        ratchet TEXT,
        tags TEXT,
        state TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cohortroute_audit (
        id INTEGER PRIMARY KEY,
        revision INTEGER NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        tenant TEXT,
        before TEXT,
        after TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS cohortroute_audit_tenant ON cohortroute_audit (tenant, id)",
    "INSERT OR IGNORE INTO cohortroute_state (id, revision, policy) VALUES (0, 0, NULL)",
)

_SELECT_TENANT = "SELECT pin, ratchet, tags, state FROM cohortroute_tenants WHERE name = ?"
_PAGE = 500  # tenants() reads this many rows per query, so no read transaction spans a yield

# SQLite waits this long per attempt, then we retry with our own jittered back-off: restarting
# SQLite's sleep schedule keeps a long-waiting process from losing every race to newcomers.
_BUSY_SLICE = 0.1
_MAX_PAUSE = 0.02


def _tenant_page(db: sqlite3.Connection, after: str) -> list[Any]:
    return db.execute(
        "SELECT name, pin, ratchet, tags, state FROM cohortroute_tenants "
        "WHERE name > ? ORDER BY name LIMIT ?",
        (after, _PAGE),
    ).fetchall()


# Connections opened by another process (inherited through fork). They are kept referenced and
# never closed: closing one in the child could drop locks or delete the WAL the parent uses.
_INHERITED: list[sqlite3.Connection] = []


class _Connection:
    """One thread's connection, remembering the process that opened it."""

    __slots__ = ("db", "pid")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db: sqlite3.Connection | None = db
        self.pid = _forksafe.pid()

    def release(self) -> None:
        """Close the connection if this process opened it, else set it aside untouched."""
        db, self.db = self.db, None
        if db is None:
            return
        if self.pid == _forksafe.pid():
            db.close()
        else:
            _INHERITED.append(db)

    def __del__(self) -> None:
        # Runs when the owning thread ends or the store is collected: close explicitly rather
        # than leave it to the sqlite3 finaliser (which warns on recent Pythons).
        with contextlib.suppress(Exception):  # at interpreter shutdown nothing is left to do
            self.release()


class SQLiteStore(Store, scheme="sqlite"):
    """State in one SQLite file: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``.

    Opening validates the path and creates (or checks) the schema at once, so a wrong path or
    a file from a newer cohortroute fails at start-up rather than on the first request.
    """

    refresh_interval = 1.0

    def __init__(self, path: str, *, timeout: float = 30.0, synchronous: str = "full") -> None:
        super().__init__()
        if synchronous.lower() not in ("full", "normal"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        if timeout < 0:
            raise ConfigurationError(f"timeout must be >= 0 seconds, got {timeout!r}")
        self.path = os.path.abspath(path)
        self.timeout = float(timeout)
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        self._prepare_lock = threading.Lock()
        self._ready = False
        self._codec = Codec(f"the SQLite store {self.path}")
        check_path(self.path)
        self._run(lambda db: None)  # open now: a bad path or schema fails at construction

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        path, timeout, synchronous = parse_url(url)
        return cls(path, timeout=timeout, synchronous=synchronous)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _before_fork(self) -> None:
        # The forking thread's connection is closed, so a child inherits nothing in the common
        # preload-then-fork case (other threads' connections are set aside in the child).
        self.close()

    # --- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        held: _Connection | None = getattr(self._local, "held", None)
        if held is not None and held.db is not None and held.pid == _forksafe.pid():
            return held.db
        if held is not None:
            held.release()  # inherited through fork: set aside, never used
        db = self._open()
        self._local.held = _Connection(db)
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path,
                timeout=min(self.timeout, _BUSY_SLICE),
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # confinement is ours; lets a finaliser close it
            )
        except sqlite3.Error as exc:
            raise open_error(exc, self.path) from exc
        try:
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            if not self._ready:
                with self._prepare_lock:
                    if not self._ready:
                        self._prepare(db)
                        self._ready = True
        except sqlite3.Error as exc:
            db.close()
            if is_busy(exc):
                raise  # retried by _run
            raise open_error(exc, self.path) from exc
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Check the schema version, switch to WAL and create the schema; idempotent."""
        found = self._schema_version(db)  # first: a newer store is refused before any change
        self._use_wal(db)
        if found == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have created it meanwhile.
            found = self._schema_version(db)
            if found is None:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO cohortroute_meta (key, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _schema_version(self, db: sqlite3.Connection) -> int | None:
        """The schema version stored in the file, None for a file without our tables."""
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cohortroute_meta'"
        ).fetchone()
        if exists is None:
            return None
        row = db.execute(
            "SELECT value FROM cohortroute_meta WHERE key = 'schema_version'"
        ).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], int):
            raise SchemaError(
                f"the SQLite store {self.path} has an unreadable schema version {row[0]!r}; "
                "it was not written by this cohortroute -- point the URL at another file"
            )
        if row[0] > SCHEMA_VERSION:
            raise SchemaError(
                f"the SQLite store {self.path} was written by a newer cohortroute (schema "
                f"{row[0]}; this release reads up to {SCHEMA_VERSION}); upgrade cohortroute"
            )
        return int(row[0])

    def _use_wal(self, db: sqlite3.Connection) -> None:
        mode = str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise ConfigurationError(
                f"cannot put the SQLite store {self.path} in WAL mode (got {mode!r}); SQLite "
                "needs a local filesystem with shared memory -- move the file off network storage"
            )

    def _discard(self) -> None:
        """Drop this thread's connection after an error left it in an unknown state."""
        held: _Connection | None = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            with contextlib.suppress(sqlite3.Error):
                held.release()

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on this thread's connection, retrying while another process writes."""
        deadline: float | None = None
        # Jitter keeps waiting processes from retrying in lockstep.
        backoff = Backoff(minimum=0.001, maximum=_MAX_PAUSE, jitter=True)
        while True:
            try:
                return work(self._connection())
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                        self._discard()
                    raise failure(exc, self.path, self.timeout) from exc
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.timeout
                if now >= deadline:
                    raise failure(exc, self.path, self.timeout) from exc
                time.sleep(backoff.next())

    def close(self) -> None:
        """Close this thread's connection; the next call on this thread opens a new one."""
        held: _Connection | None = getattr(self._local, "held", None)
        if held is not None:
            self._local.held = None
            held.release()

    # --- decoding ------------------------------------------------------------------------

    def _load_policy(self, revision: int, raw: str | None) -> Policy:
        return self._codec.policy_text(raw, revision, "cohortroute_state.policy")

    def _load_tenant(self, name: str, row: Any) -> TenantRecord:
        if row is None:
            return TenantRecord(name)
        pin, ratchet, tags, state = row
        where = f"cohortroute_tenants[{name!r}]"
        data = {
            "pin": pin,
            "ratchet": ratchet,
            "tags": self._codec.loads(tags, where) if tags else (),
            "state": self._codec.loads(state, where) if state else None,
        }
        return self._codec.tenant(name, data, where)

    def _read_tenant(self, db: sqlite3.Connection, name: str) -> TenantRecord:
        return self._load_tenant(name, db.execute(_SELECT_TENANT, (name,)).fetchone())

    def _load_entry(self, row: Any) -> AuditEntry:
        where = "cohortroute_audit"
        keys = ("revision", "at", "actor", "action", "tenant", "before", "after")
        data = dict(zip(keys, row, strict=True))
        for key in ("before", "after"):
            if data[key] is not None:
                data[key] = self._codec.loads(data[key], where)
        return self._codec.audit(data, where)

    # --- the primitives ------------------------------------------------------------------

    def revision(self) -> int:
        return int(
            self._run(lambda db: db.execute("SELECT revision FROM cohortroute_state").fetchone()[0])
        )

    def policy(self) -> Policy:
        row = self._run(
            lambda db: db.execute("SELECT revision, policy FROM cohortroute_state").fetchone()
        )
        return self._load_policy(int(row[0]), row[1])

    def tenant(self, name: str) -> TenantRecord:
        row = self._run(lambda db: db.execute(_SELECT_TENANT, (name,)).fetchone())
        return self._load_tenant(name, row)

    def tenants(self) -> Iterator[TenantRecord]:
        """Every stored record in name order, read a page at a time (not one snapshot)."""
        after = ""
        while True:
            rows = self._run(functools.partial(_tenant_page, after=after))
            for row in rows:
                yield self._load_tenant(row[0], row[1:])
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        sql = "SELECT revision, at, actor, action, tenant, before, after FROM cohortroute_audit"
        args: tuple[Any, ...] = (max(limit, 0),)
        if tenant is not None:
            sql += " WHERE tenant = ?"
            args = (tenant, *args)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self._run(lambda db: db.execute(sql, args).fetchall())
        return [self._load_entry(row) for row in rows]

    def commit(self, change: ChangeFn, actor: str) -> int:
        def attempt(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT revision, policy FROM cohortroute_state").fetchone()
                current = int(row[0])
                reader = FunctionReader(
                    functools.partial(self._load_policy, current, row[1]),
                    functools.partial(self._read_tenant, db),
                )
                mutation = change(reader)
                if not mutation:
                    db.execute("ROLLBACK")  # nothing to write: no revision, no audit entry
                    return current
                revision = current + 1
                self._apply(db, mutation, revision, actor)
                db.execute("COMMIT")
                return revision
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        self._discard()
                raise

        return self._run(attempt)

    def _apply(self, db: sqlite3.Connection, mutation: Mutation, revision: int, actor: str) -> None:
        """Write a mutation's records, the new revision and its audit entries (in a transaction)."""
        if mutation.policy is None:
            db.execute("UPDATE cohortroute_state SET revision = ?", (revision,))
        else:
            db.execute(
                "UPDATE cohortroute_state SET revision = ?, policy = ?",
                (revision, encode_policy(mutation.policy)),
            )
        for name, record in mutation.tenants.items():
            if record.is_empty():
                db.execute("DELETE FROM cohortroute_tenants WHERE name = ?", (name,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO cohortroute_tenants (name, pin, ratchet, tags, state)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        name,
                        record.pin,
                        record.ratchet,
                        dumps(sorted(record.tags)) if record.tags else None,
                        dumps(dict(record.state)) if record.state else None,
                    ),
                )
        db.executemany(
            "INSERT INTO cohortroute_audit (revision, at, actor, action, tenant, before, after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.revision,
                    e.at,
                    e.actor,
                    e.action,
                    e.tenant,
                    None if e.before is None else dumps(e.before),
                    None if e.after is None else dumps(e.after),
                )
                for e in mutation.audit(revision, actor, self.clock.time())
            ],
        )

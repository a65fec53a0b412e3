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
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .. import _forksafe
from .._backoff import Backoff
from ..errors import ConfigurationError
from ..policy import AuditEntry, Policy, TenantRecord
from ._codec import Codec, dumps, encode_policy
from ._sqlite_file import (
    MAX_TIMEOUT,
    check_path,
    deleted,
    failure,
    identity,
    is_busy,
    open_error,
    parse_url,
    replaced,
)
from ._sqlite_schema import SCHEMA_VERSION, prepare

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]
from .base import ChangeFn, FunctionReader, Mutation, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

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
    """One thread's connection, remembering the process that opened it and which file (the
    store's ``_file_generation``) it is on."""

    __slots__ = ("db", "generation", "pid")

    def __init__(self, db: sqlite3.Connection, generation: int) -> None:
        self.db: sqlite3.Connection | None = db
        self.pid = _forksafe.pid()
        self.generation = generation

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

    Building one only checks its arguments; the file is opened on first use, so a store that
    cannot be opened yet (a missing directory, wrong permissions, a file from a newer
    cohortroute) raises :class:`~cohortroute.errors.StoreUnavailableError` (or
    :class:`~cohortroute.errors.SchemaError`) from its calls, with what to fix -- and a router
    built over it starts, serves the default and says so, then recovers once the file can be
    opened. With ``create=False`` (URL ``?mode=rw``) the file must already hold a store.
    """

    refresh_interval = 1.0

    def __init__(
        self,
        path: str,
        *,
        timeout: float = 30.0,
        synchronous: str = "full",
        create: bool = True,
    ) -> None:
        super().__init__()
        if synchronous.lower() not in ("full", "normal"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        if not 0 <= timeout <= MAX_TIMEOUT:  # also refuses nan, which would wait forever
            raise ConfigurationError(
                f"timeout must be from 0 to {MAX_TIMEOUT:g} seconds, got {timeout!r}"
            )
        self.path = os.path.abspath(path)
        self.timeout = float(timeout)
        self.synchronous = synchronous.upper()
        self.create = create
        self._local = threading.local()
        self._prepare_lock = threading.Lock()
        self._ready = False
        # The file the connections are on, (st_dev, st_ino), and a counter that moves when
        # another file takes its place, so every thread reopens.
        self._identity: tuple[int, int] | None = None
        self._file_generation = 0
        self._codec = Codec(f"the SQLite store {self.path}")

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SQLiteStore:
        """The store a ``sqlite://`` URL names; its ``?mode=`` (``rwc`` may create the file,
        ``rw`` must find a store there) wins over ``create``."""
        path, timeout, synchronous, mode = parse_url(url)
        create = create if mode is None else mode
        return cls(path, timeout=timeout, synchronous=synchronous, create=create)

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
            if held.generation == self._file_generation:
                return held.db
            held.release()  # on a file that was replaced: reopen
        elif held is not None:
            held.release()  # inherited through fork: set aside, never used
        generation = self._file_generation
        db = self._open()
        self._local.held = _Connection(db, generation)
        return db

    def _open(self) -> sqlite3.Connection:
        check_path(self.path, self.create)
        # mode=rw: never create the file, even when it vanishes between the check and here.
        target = f"file:{urllib.parse.quote(self.path)}?mode={'rwc' if self.create else 'rw'}"
        try:
            db = sqlite3.connect(
                target,
                uri=True,
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
                        prepare(db, self.path, self.create)
                        self._ready = True
            if self._identity is None:
                self._identity = identity(self.path)
        except sqlite3.Error as exc:
            db.close()
            if is_busy(exc):
                raise  # retried by _run
            raise open_error(exc, self.path) from exc
        except BaseException:
            db.close()
            raise
        return db

    def _check_file(self) -> None:
        """Notice the file being deleted or replaced under this process.

        A process keeps reading a deleted (unlinked) file through its open connections, while
        new processes would create or open another one: a silent split brain. A deleted file
        makes every call fail until it is back; a replaced one is switched to, loudly.
        """
        known = self._identity
        if known is None:
            return
        now = identity(self.path)
        if now is None:
            raise deleted(self.path)
        if now != known:
            with self._prepare_lock:
                if self._identity == known:
                    log.error("cohortroute: %s", replaced(self.path))
                    self._identity = None
                    self._ready = False
                    self._file_generation += 1

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
        self._check_file()
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

    def tenant_names(self, prefix: str = "", *, after: str = "", limit: int = 50) -> list[str]:
        # The primary key's index serves the range: one page read, however big the registry.
        end = prefix + "\U0010ffff" if prefix else "\U0010ffff"
        rows = self._run(
            lambda db: db.execute(
                "SELECT name FROM cohortroute_tenants WHERE name >= ? AND name > ? AND name < ? "
                "ORDER BY name LIMIT ?",
                (prefix, after, end, limit),
            ).fetchall()
        )
        return [str(row[0]) for row in rows]

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
        self._check_file()

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

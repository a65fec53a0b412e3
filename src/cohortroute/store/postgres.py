"""The PostgreSQL store: ``postgresql://user@host:5432/db?schema=cohortroute``.

Four tables, created on first use (idempotently, under an advisory lock, so concurrent first
users do not trip over each other); their names start with ``table_prefix``
(``cohortroute_`` by default) and live in ``schema`` when one is given (created if missing),
else in the connection's current schema::

    {prefix}meta     name -> value; the ``schema_version`` row says which layout this is
    {prefix}state    the single row (id = 1) holding the revision and the policy (json)
    {prefix}tenants  tenant name -> record (json)
    {prefix}audit    one row per audit entry, indexed by tenant for ``history(tenant=...)``

A commit locks the state row (``SELECT ... FOR UPDATE``), so writers are serialised by the
server; the records, audit rows, the new revision and a ``NOTIFY`` carrying it are written in one
transaction. Listeners ``LISTEN`` on :attr:`PostgresStore.channel`.

Query parameters: ``schema``, ``table_prefix``, ``connect_timeout`` (seconds, default 1; libpq
waits at least 2), ``timeout`` (seconds per round trip, default 2) and ``push`` (``false``
starts no LISTEN connection, e.g. behind PgBouncer in transaction mode: routers then rely on
their periodic revision check); any other parameter is passed to libpq (``sslmode``...).

Every round trip with the server ends within ``timeout``, enforced by the client (see
:mod:`cohortroute.store._pg_deadline`), so a server or pooler that accepts connections and never
answers makes a call fail with :class:`~cohortroute.errors.StoreUnavailableError` instead of
blocking it. Transactions also set ``statement_timeout`` and
``idle_in_transaction_session_timeout`` locally, so the server frees a lock held by a frozen
client; no startup option is sent, which PgBouncer in transaction mode would refuse.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlunsplit

from ..errors import ConfigurationError
from ..policy import AuditEntry, Policy, TenantRecord
from ._codec import dumps, encode_policy, encode_tenant
from ._network import NetworkStore, kept_in_child
from ._pg_deadline import bounded_connection
from ._pg_pool import Pool as _Pool
from ._pg_queries import SCHEMA_VERSION, Queries
from ._push import POLL, PushListener
from .base import ChangeFn, FunctionReader

if TYPE_CHECKING:
    import psycopg

    _Conn = psycopg.Connection[tuple[Any, ...]]

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

log = logging.getLogger(__name__)

_DEFAULT_PREFIX = "cohortroute_"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}\Z")


def _import_psycopg() -> Any:
    try:
        import psycopg
        import psycopg.sql
        import psycopg.types.json
    except ImportError as exc:
        raise ConfigurationError(
            "the PostgreSQL store needs the psycopg package: pip install 'cohortroute[postgres]'"
        ) from exc
    # 3.2 added Connection.notifies(timeout=...), which the listener needs to notice close().
    if tuple(int(part) for part in re.findall(r"\d+", psycopg.__version__)[:2]) < (3, 2):
        raise ConfigurationError(
            f"the PostgreSQL store needs psycopg 3.2 or later, found {psycopg.__version__}: "
            "pip install -U 'cohortroute[postgres]' 'psycopg>=3.2'"
        )
    return psycopg


def _open(
    connection: Any, params: dict[str, Any], application: str, timeout: float | None
) -> _Conn:
    """A new autocommit connection (transactions are explicit, so none idles half-open) whose
    round trips each end within ``timeout`` seconds."""
    conn: _Conn = connection.connect(
        **params, fallback_application_name=application, autocommit=True
    )
    conn.round_trip_timeout = timeout  # type: ignore[attr-defined]
    return conn


class PostgresStore(NetworkStore["_Pool"], scheme=("postgresql", "postgres")):
    """State in PostgreSQL tables, shared by every process that opens the same URL.

    Connections are opened lazily by the process that uses them (never inherited across a
    fork) and pooled per process. :meth:`subscribe` starts one listener thread with its own
    connection that turns the ``NOTIFY`` of other processes' commits into change notifications.
    """

    kind = "PostgreSQL"
    own_options = ("schema", "table_prefix")
    schema_version = SCHEMA_VERSION
    url_fields = "host, port, database, user and password"
    timeout_name = "statement"
    driver_numbers: ClassVar[dict[str, tuple[float, float, bool]]] = {
        "keepalives": (0, 1, True),
        "keepalives_idle": (1, 3600, True),
        "keepalives_interval": (1, 3600, True),
        "keepalives_count": (1, 100, True),
        "tcp_user_timeout": (0, 3_600_000, True),
        "port": (1, 65535, True),
    }

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url, create=create)
        self.schema = self._options.get("schema") or None
        self.table_prefix = self._options.get("table_prefix", _DEFAULT_PREFIX)
        for name, ident in (("schema", self.schema), ("table_prefix", self.table_prefix)):
            if ident is not None and _IDENT.match(ident) is None:
                raise ConfigurationError(
                    f"invalid {name}={ident!r} in {self.url}: use 1-41 of letters, digits and "
                    "_, not starting with a digit"
                )

        self._psycopg = _import_psycopg()
        driver_url = urlunsplit(
            self._driver_parts._replace(scheme="postgresql", query=urlencode(self._driver_query))
        )
        try:
            params: dict[str, Any] = self._psycopg.conninfo.conninfo_to_dict(driver_url)
        except self._psycopg.Error as exc:
            raise ConfigurationError(f"invalid PostgreSQL URL {self.url}: {exc}") from exc
        timeout_ms = max(1, round(self.timeout * 1000))
        #: The server-side bounds a transaction sets for itself (SET LOCAL, so they also work
        #: through PgBouncer in transaction mode, which refuses them as startup options).
        self._local_timeouts = (str(timeout_ms), str(5 * timeout_ms))
        self._connection_class = bounded_connection(self._psycopg)
        params["connect_timeout"] = str(math.ceil(self.connect_timeout))
        # Notice a dead server (or a silent network) within a few seconds, not hours.
        params.setdefault("keepalives", "1")
        params.setdefault("keepalives_idle", str(max(1, math.ceil(self.timeout))))
        params.setdefault("keepalives_interval", "1")
        params.setdefault("keepalives_count", "3")
        params.setdefault("tcp_user_timeout", str(timeout_ms))
        self._params = params

        self._q = Queries(self._psycopg.sql, self.schema, self.table_prefix)
        where = f"{self.schema}.{self.table_prefix}" if self.schema else self.table_prefix
        #: The NOTIFY channel every commit announces its new revision on.
        self.channel = f"{where}changes"
        if len(self.channel.encode()) > 63:  # longer channel names are refused by the server
            self.channel = (
                "cohortroute_"
                + hashlib.sha1(self.channel.encode(), usedforsecurity=False).hexdigest()[:24]
            )
        digest = hashlib.sha1(f"cohortroute:{where}".encode(), usedforsecurity=False).digest()
        self._ddl_lock = int.from_bytes(digest[:8], "big", signed=True)
        self._ready = False

    def __repr__(self) -> str:
        place = f" schema={self.schema!r}" if self.schema else ""
        return f"<PostgresStore {self.url}{place} table_prefix={self.table_prefix!r}>"

    @property
    def _unavailable(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg.OperationalError,)

    @property
    def _driver_error(self) -> type[BaseException]:
        error: type[BaseException] = self._psycopg.Error
        return error

    @property
    def failure_hint(self) -> str:
        return (
            f"Check the user's privileges on the {self._where()}, and that no other program "
            "changed them."
        )

    # --- connections ------------------------------------------------------------------------

    def _open_pool(self) -> _Pool:
        # The pool must not refer to the store, which must stay collectable.
        return _Pool(
            functools.partial(
                _open, self._connection_class, self._params, "cohortroute", self.timeout
            )
        )

    @staticmethod
    def _close_pool(pool: _Pool) -> None:
        pool.close()

    def _abandon_pool(self, pool: _Pool) -> None:
        kept_in_child().extend(pool.abandon())

    @contextmanager
    def _connection(self, doing: str) -> Iterator[_Conn]:
        """A connection of this process's pool, to ``doing``; driver errors become StoreErrors."""
        pool = self._connections()
        with self._errors(doing):
            conn = pool.acquire()
            try:
                if not self._ready:
                    self._prepare(conn)
                yield conn
            except self._psycopg.errors.UndefinedTable:
                # The tables are gone (a database recreated empty, a schema dropped): the next
                # call creates them again, and routers record their versions once more.
                self._ready = False
                raise
            finally:
                pool.release(conn)
        self._used()

    @contextmanager
    def _transaction(self, conn: _Conn) -> Iterator[None]:
        """A transaction whose statements and idle time the server bounds as well."""
        with conn.transaction():
            conn.execute(self._q.local_timeouts, self._local_timeouts)
            yield

    def _prepare(self, conn: _Conn) -> None:
        """Create the tables if they are missing, and check the schema version once."""
        raw = self._schema_version(conn)
        if raw is None and not self.create:
            self._check_schema(None, self._where())  # says there is no store, and how to make one
        if raw is None:
            with self._transaction(conn):
                # Concurrent CREATE ... IF NOT EXISTS can collide in the catalog, so creators
                # queue on a lock; and whoever comes second finds the work done and does nothing
                # (re-running the DDL would take table locks that deadlock with live writers).
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._ddl_lock,))
                if self._schema_version(conn) is None:
                    for statement in self._q.create:
                        conn.execute(statement)
            raw = self._schema_version(conn)
        self._check_schema("unknown" if raw is None else raw, self._where())
        self._ready = True

    def _schema_version(self, conn: _Conn) -> str | None:
        """The schema_version row's value; None when the tables (or the row) do not exist."""
        # pg_tables is read with a fresh snapshot; to_regclass() may answer from a stale cache
        # and miss a table another session just created.
        exists = conn.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_tables "
            "WHERE schemaname = coalesce(%s, current_schema()) AND tablename = %s)",
            (self.schema, self.table_prefix + "meta"),
        )
        if exists.fetchone() != (True,):
            return None
        row = conn.execute(self._q.schema_version).fetchone()
        return None if row is None else str(row[0])

    def _where(self) -> str:
        tables = f"tables {self.table_prefix}*"
        return f"{tables} in schema {self.schema}" if self.schema else tables

    # --- decoding ---------------------------------------------------------------------------

    def _revision_of(self, row: tuple[Any, ...] | None) -> int:
        where = f"{self.table_prefix}state"
        if row is None:
            raise self._codec.corrupt(where, "the row id = 1 is missing")
        if not isinstance(row[0], int):
            raise self._codec.corrupt(where, f"revision {row[0]!r}")
        return self._codec.revision(row[0], where)

    def _policy_of(self, data: Any, revision: int) -> Policy:
        return self._codec.policy(data, revision, f"{self.table_prefix}state.policy")

    def _tenant_of(self, name: str, data: Any) -> TenantRecord:
        return self._codec.tenant(name, data, f"{self.table_prefix}tenants[{name!r}]")

    def _entry_of(self, row: tuple[Any, ...]) -> AuditEntry:
        keys = ("revision", "at", "actor", "action", "tenant", "before", "after")
        return self._codec.audit(dict(zip(keys, row, strict=True)), f"{self.table_prefix}audit")

    def _read_tenants(self, conn: _Conn, names: Sequence[str]) -> dict[str, TenantRecord]:
        # One round trip for a whole batch (imports, ratchet marks), not one per tenant.
        found = conn.execute(self._q.tenants_in, (list(names),)).fetchall()
        rows: dict[str, Any] = {str(row[0]): row[1] for row in found}
        return {name: self._tenant_of(name, rows.get(name)) for name in names}

    # --- reads ------------------------------------------------------------------------------

    def revision(self) -> int:
        with self._connection("reading the revision") as conn:
            row = conn.execute(self._q.revision).fetchone()
        return self._revision_of(row)

    def policy(self) -> Policy:
        with self._connection("reading the policy") as conn:
            row = conn.execute(self._q.policy).fetchone()
        return self._policy_of(None if row is None else row[1], self._revision_of(row))

    def tenant(self, name: str) -> TenantRecord:
        with self._connection(f"reading tenant {name!r}") as conn:
            row = conn.execute(self._q.tenant, (name,)).fetchone()
        return self._tenant_of(name, None if row is None else row[0])

    def read_tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        if not names:
            return {}
        with self._connection(f"reading {len(names)} tenants") as conn:
            return self._read_tenants(conn, names)

    def tenants(self) -> Iterator[TenantRecord]:
        with self._connection("listing tenants") as conn:
            rows = conn.execute(self._q.tenants).fetchall()
        return iter([self._tenant_of(name, record) for name, record in rows])

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit <= 0:
            return []
        with self._connection("reading the audit log") as conn:
            if tenant is None:
                rows = conn.execute(self._q.history, (limit,)).fetchall()
            else:
                rows = conn.execute(self._q.tenant_history, (tenant, limit)).fetchall()
        return [self._entry_of(row) for row in rows]

    # --- writes -----------------------------------------------------------------------------

    def commit(self, change: ChangeFn, actor: str) -> int:
        # json, not jsonb: the text is kept as written, so numbers come back exactly (jsonb
        # would turn 1e16 into the integer 10000000000000000, and round long floats).
        as_json = self._psycopg.types.json.Json
        q = self._q
        with self._connection("writing a change") as conn, self._transaction(conn):
            # Every writer locks this row first, so writers queue here instead of racing.
            row = conn.execute(q.lock).fetchone()
            revision = self._revision_of(row)
            policy = self._policy_of(None if row is None else row[1], revision)
            reader = FunctionReader(
                policy,
                lambda name: self._read_tenants(conn, [name])[name],
                functools.partial(self._read_tenants, conn),
            )
            mutation = change(reader)
            if not mutation:
                return revision
            new = revision + 1
            if mutation.policy is None:
                conn.execute(q.set_revision, (new,))
            else:
                conn.execute(q.set_state, (new, as_json(mutation.policy, dumps=encode_policy)))
            gone = [(n,) for n, r in mutation.tenants.items() if r.is_empty()]
            kept = [
                (n, as_json(r, dumps=encode_tenant))
                for n, r in mutation.tenants.items()
                if not r.is_empty()
            ]
            with conn.cursor() as cursor:  # executemany pipelines: one round trip per batch
                if gone:
                    cursor.executemany(q.delete_tenant, gone)
                if kept:
                    cursor.executemany(q.put_tenant, kept)
            rows = [
                (
                    e.revision,
                    e.at,
                    e.actor,
                    e.action,
                    e.tenant,
                    None if e.before is None else as_json(e.before, dumps=dumps),
                    None if e.after is None else as_json(e.after, dumps=dumps),
                )
                for e in mutation.audit(new, actor, self.clock.time())
            ]
            with conn.cursor() as cursor:
                cursor.executemany(q.audit, rows)
            # Delivered to listeners when (and only if) this transaction commits.
            conn.execute(q.notify, (self.channel, str(new)))
            return new

    # --- push -------------------------------------------------------------------------------

    def _new_listener(self) -> _Listener:
        listener = _Listener(self)
        listener.start()
        return listener


class _Listener(PushListener):
    """``LISTEN`` -> ``store._notify()``: LISTEN first, then tell subscribers to re-read."""

    kind = "PostgreSQL"

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(
            store,
            name=f"cohortroute-postgres-listener {store.channel}",
            url=store.url,
            # At worst the thread is connecting (libpq waits at least 2 s) or running LISTEN.
            join_timeout=max(2, math.ceil(store.connect_timeout)) + store.timeout + 1,
            errors=(store._psycopg.Error, OSError),
        )
        # Bound to the connection parameters, not to the store, which must stay collectable.
        # Connecting and LISTEN are bounded by the store's timeouts; waiting for notifications
        # is not (it polls, so stop() is heard within POLL seconds).
        self._connect = functools.partial(
            _open, store._connection_class, store._params, "cohortroute-listener", store.timeout
        )
        self._listen = store._psycopg.sql.SQL("LISTEN {}").format(
            store._psycopg.sql.Identifier(store.channel)
        )
        #: The current connection, kept here so that a fork's child can keep it open.
        self.conn: _Conn | None = None

    def inherited(self) -> object | None:
        return self.conn

    def _session(self) -> bool:
        conn = self.conn = self._connect()
        try:
            conn.execute(self._listen)
            conn.round_trip_timeout = None  # type: ignore[attr-defined]
            if not self._notify():
                return False
            while not self._stopped():
                for _ in conn.notifies(timeout=POLL):
                    if not self._notify():
                        return False
                if self._store() is None:
                    return False
            return True
        finally:
            self.conn = None
            conn.close()

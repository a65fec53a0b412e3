"""The PostgreSQL store against a real server: tables, locking, NOTIFY, reconnects, forks, failures.

The behaviour every store shares is checked by the contract suite; this module covers what is
PostgreSQL-specific. Needs the server from ``COHORTROUTE_TEST_POSTGRES_URL`` (tests/services.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cohortroute.errors import ConfigurationError, SchemaError, StoreError, StoreUnavailableError
from cohortroute.store import Store, open_store
from cohortroute.store.postgres import PostgresStore
from cohortroute.testing.contract import SharedStoreContract

# tests.services is a plugin of this module (fixtures) and a helper library (imports): have its
# asserts rewritten before importing it. Unneeded once tests/conftest.py loads the plugin itself.
pytest.register_assert_rewrite("tests.services")
from tests.services import (  # noqa: E402
    Pushes,
    check_nothing_lost,
    closed_port,
    drop_schema,
    in_child,
    listener_threads,
    open_fds,
    run_in_processes,
    run_in_threads,
    settle,
    silent_server,
    unique_name,
    with_query,
)

pytest_plugins = ("tests.services",)
pytestmark = pytest.mark.postgres

Opener = Callable[[str], Store]
Admin = psycopg.Connection[tuple[Any, ...]]


def pg_store(opener: Opener, url: str) -> PostgresStore:
    store = opener(url)
    assert isinstance(store, PostgresStore)
    return store


def table(store: PostgresStore, name: str) -> sql.Identifier:
    assert store.schema is not None
    return sql.Identifier(store.schema, store.table_prefix + name)


def terminate_listener(admin: Admin, store: PostgresStore) -> int:
    """Kill the server session of ``store``'s LISTEN connection; how many were killed."""
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'cohortroute-listener' AND query LIKE %s",
        (f"%{store.channel}%",),
    ).fetchall()
    return sum(1 for (killed,) in rows if killed)


class TestPostgresStore(SharedStoreContract):
    """The contract every shared store keeps, on the real server (one schema per store)."""

    @pytest.fixture
    def store_factory(
        self, postgres_server: str, postgres_admin: Admin
    ) -> Iterator[Callable[[], Store]]:
        made: list[tuple[Store, str]] = []

        def make() -> Store:
            schema = unique_name()
            store = open_store(with_query(postgres_server, schema=schema))
            made.append((store, schema))
            return store

        yield make
        for store, schema in made:
            store.close()
            drop_schema(postgres_admin, schema)

    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url


# --- configuration (no server needed) ---------------------------------------------------------


def test_url_options_and_defaults() -> None:
    store = open_store(
        "postgres://app:s3cret@db.internal/prod?schema=routing&sslmode=require&timeout=0.5"
    )
    assert isinstance(store, PostgresStore)
    assert (store.schema, store.table_prefix) == ("routing", "cohortroute_")
    assert (store.connect_timeout, store.timeout, store.refresh_interval) == (1.0, 0.5, 1.0)
    assert store.channel == "routing.cohortroute_changes"
    assert "s3cret" not in repr(store)
    assert store.url.startswith("postgres://app:***@db.internal/prod?")
    bare = PostgresStore("postgresql://localhost/db?table_prefix=cr_")
    assert (bare.schema, bare.table_prefix, bare.channel) == (None, "cr_", "cr_changes")


@pytest.mark.parametrize(
    "query",
    ["timeout=0", "connect_timeout=nan", "schema=bad-name", "table_prefix=1x", "bogus=1"],
)
def test_bad_options_are_refused(query: str) -> None:
    with pytest.raises(ConfigurationError, match=r"postgresql://u:\*\*\*@localhost/db"):
        open_store(f"postgresql://u:pw@localhost/db?{query}")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'cohortroute\[postgres\]'"):
        open_store("postgresql://127.0.0.1/test")


def test_driver_is_imported_only_when_a_store_is_built() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None
        import cohortroute, cohortroute.store, cohortroute.store.postgres
        from cohortroute.store import open_store
        try:
            open_store("postgresql://127.0.0.1/test")
        except cohortroute.errors.ConfigurationError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'cohortroute[postgres]'" in result.stdout


# --- tables -----------------------------------------------------------------------------------


def test_tables_are_created_on_first_use(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener
) -> None:
    store = pg_store(open_stores, postgres_url)
    assert store.revision() == 0
    rows = postgres_admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        (store.schema,),
    ).fetchall()
    assert [name for (name,) in rows] == [
        "cohortroute_audit",
        "cohortroute_meta",
        "cohortroute_state",
        "cohortroute_tenants",
    ]
    meta = postgres_admin.execute(
        sql.SQL("SELECT name, value FROM {}").format(table(store, "meta"))
    )
    assert meta.fetchall() == [("schema_version", "1")]
    store.register_versions(["1", "2"], default="1")
    store.pin("acme", "2")
    store.unpin("acme")
    tenants = sql.SQL("SELECT count(*) FROM {}").format(table(store, "tenants"))
    assert postgres_admin.execute(tenants).fetchone() == (0,)  # an empty record is deleted
    assert store.revision() == 3
    assert [e.action for e in store.history(tenant="acme")] == ["unpin", "pin"]


def test_concurrent_first_users_create_the_tables_once(postgres_url: str) -> None:
    barrier = threading.Barrier(6)
    results: list[object] = []

    def first_use() -> None:
        store = open_store(postgres_url)
        try:
            barrier.wait()
            results.append(store.revision())
        except BaseException as exc:
            results.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [0] * 6


def test_two_table_prefixes_in_one_schema_are_independent(
    postgres_url: str, open_stores: Opener
) -> None:
    a = open_stores(with_query(postgres_url, table_prefix="a_"))
    b = open_stores(with_query(postgres_url, table_prefix="b_"))
    a.register_versions(["1"])
    assert (a.revision(), b.revision()) == (1, 0)


# --- atomic, revisioned writes ----------------------------------------------------------------


def test_concurrent_threads_lose_no_write(postgres_url: str, open_stores: Opener) -> None:
    run_in_threads(postgres_url, workers=6, writes=15)
    check_nothing_lost(open_stores(postgres_url), workers=6, writes=15)


def test_concurrent_processes_lose_no_write(postgres_url: str, open_stores: Opener) -> None:
    run_in_processes(postgres_url, workers=4, writes=15)
    check_nothing_lost(open_stores(postgres_url), workers=4, writes=15)


def test_a_refused_change_writes_nothing(postgres_url: str, open_stores: Opener) -> None:
    store = open_stores(postgres_url)
    store.register_versions(["1"], default="1")
    with pytest.raises(ValueError, match="unknown version"):
        store.pin("acme", "9")
    assert store.revision() == 1
    store.pin("acme", "1")  # the pooled connection is usable after the rollback
    assert store.revision() == 2


# --- push -------------------------------------------------------------------------------------


def test_a_commit_is_pushed_to_other_instances(postgres_url: str, open_stores: Opener) -> None:
    writer, reader = open_stores(postgres_url), open_stores(postgres_url)
    pushes = Pushes()
    reader.subscribe(pushes)
    reader.subscribe(pushes)  # still one listener thread
    assert pushes.wait_for(1, timeout=3), "the listener notifies once it is listening"
    assert len(listener_threads()) == 1
    started = time.monotonic()
    writer.register_versions(["1"])
    assert pushes.wait_for(2, timeout=1)
    assert time.monotonic() - started < 1


def test_listener_reconnects_after_its_session_is_terminated(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener
) -> None:
    writer, reader = open_stores(postgres_url), pg_store(open_stores, postgres_url)
    pushes = Pushes()
    reader.subscribe(pushes)
    assert pushes.wait_for(1, timeout=3)
    assert terminate_listener(postgres_admin, reader) == 1
    # Notifications sent while it was away are lost, so it tells subscribers to re-read.
    assert pushes.wait_for(2, timeout=3), "no notification after reconnecting"
    writer.register_versions(["1"])
    assert pushes.wait_for(3, timeout=1), "notifications do not flow after reconnecting"
    assert len(listener_threads()) == 1


def test_close_stops_the_listener(postgres_url: str) -> None:
    store = open_store(postgres_url)
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=3)
    store.close()
    assert listener_threads() == []
    assert store.revision() == 0  # reopens lazily, without restarting the listener
    assert listener_threads() == []
    store.close()


def test_a_dropped_store_stops_its_listener_and_closes_its_connections(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    store.register_versions(["1"])  # with pooled connections too
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=3)
    del store  # never closed: nothing may linger, and no ResourceWarning either
    assert settle(lambda: listener_threads() == []), "listener outlived its store"


def test_no_thread_or_fd_leak(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener
) -> None:
    writer = open_stores(postgres_url)
    writer.register_versions(["1"])
    threads, fds = threading.active_count(), open_fds()
    for i in range(10):
        store = open_store(postgres_url)
        pushes = Pushes()
        store.subscribe(pushes)
        assert pushes.wait_for(1, timeout=3)
        writer.set_rule(f"t{i}", "1")
        assert pushes.wait_for(2, timeout=2)
        assert store.policy().rules[-1] == (f"t{i}", "1")
        store.close()
    # Repeated outages: every reconnect replaces the connection, it never adds one.
    store = pg_store(open_stores, postgres_url)
    pushes = Pushes()
    store.subscribe(pushes)
    for outage in range(1, 4):
        assert pushes.wait_for(outage, timeout=3)
        assert terminate_listener(postgres_admin, store) == 1
    assert pushes.wait_for(4, timeout=3)
    store.close()
    assert settle(lambda: (threading.active_count(), open_fds()) == (threads, fds))


def test_a_terminated_pooled_connection_is_replaced(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener
) -> None:
    name = unique_name()  # an application_name in the URL beats the store's default
    store = pg_store(open_stores, with_query(postgres_url, application_name=name))
    store.register_versions(["1"])
    killed = postgres_admin.execute(
        "SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity WHERE application_name = %s",
        (name,),
    ).fetchall()
    assert killed == [(True,)]
    assert store.revision() == 1  # not an error: the dead session is noticed and replaced
    store.pin("acme", "1")


# --- processes --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork with threads
def test_a_forked_child_opens_its_own_connections(postgres_url: str, open_stores: Opener) -> None:
    store = open_stores(postgres_url)
    store.register_versions(["1", "2"], default="1")  # the parent has a pooled connection
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=3)

    def child() -> bool:
        store.pin("forked", "2")
        ok = store.tenant("forked").pin == "2" and len(listener_threads()) == 1
        store.close()  # closes the child's connections only, never the parent's sessions
        return ok

    assert in_child(child) == 0
    # The parent's pooled connection and its listener survived the child.
    assert store.tenant("forked").pin == "2"
    assert pushes.wait_for(2, timeout=1)
    assert store.revision() == 2


# --- failures ---------------------------------------------------------------------------------


def test_unreachable_server_fails_fast_and_clearly() -> None:
    port = closed_port()
    store = open_store(f"postgresql://cr:hunter2@127.0.0.1:{port}/test")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            store.revision()
        assert time.monotonic() - started < 1.0
        message = str(info.value)
        assert f"postgresql://cr:***@127.0.0.1:{port}/test" in message
        assert "hunter2" not in message
        assert "server is running" in message
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        with pytest.raises(StoreUnavailableError):
            store.pin("acme", "1")
    finally:
        store.close()


def test_hung_server_times_out_connecting() -> None:
    with silent_server() as port:
        store = open_store(f"postgresql://127.0.0.1:{port}/test?connect_timeout=1")
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="connect timeout 1s"):
                store.revision()
            # libpq (and psycopg) wait at least 2 seconds for a connection.
            assert time.monotonic() - started < 3.5
        finally:
            store.close()


def test_a_blocked_write_times_out(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener
) -> None:
    store = pg_store(open_stores, with_query(postgres_url, timeout="0.3"))
    store.register_versions(["1"], default="1")
    state = table(store, "state")
    with postgres_admin.transaction():  # another session holds the state row's lock
        postgres_admin.execute(sql.SQL("SELECT 1 FROM {} FOR UPDATE").format(state))
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"statement timeout 0\.3s"):
            store.pin("acme", "1")
        assert time.monotonic() - started < 1.5
    store.pin("acme", "1")
    assert store.revision() == 2


@pytest.mark.parametrize(
    ("statement", "call"),
    [
        ("UPDATE {state} SET policy = '[1, 2]'", "policy"),
        ("UPDATE {state} SET policy = '{{\"rules\": 5}}'", "policy"),
        ("UPDATE {state} SET revision = -4", "revision"),
        ("DELETE FROM {state}", "revision"),
        ("INSERT INTO {tenants} VALUES ('acme', '\"pinned\"')", "tenant"),
        ("INSERT INTO {tenants} VALUES ('acme', '{{\"tags\": 3}}')", "tenants"),
        ("ALTER TABLE {tenants} RENAME TO gone", "tenant"),
    ],
)
def test_garbage_in_the_store_raises_store_error(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener, statement: str, call: str
) -> None:
    store = pg_store(open_stores, postgres_url)
    store.revision()  # create the tables
    names = {"state": table(store, "state"), "tenants": table(store, "tenants")}
    postgres_admin.execute(sql.SQL(statement).format(**names))
    reads: dict[str, Callable[[], object]] = {
        "revision": store.revision,
        "policy": store.policy,
        "tenant": lambda: store.tenant("acme"),
        "tenants": lambda: list(store.tenants()),
    }
    with pytest.raises(StoreError) as info:
        reads[call]()
    assert type(info.value) is StoreError
    assert store.url in str(info.value)


@pytest.mark.parametrize("version", ["2", "zero", "0"])
def test_unknown_schema_version_raises_schema_error(
    postgres_url: str, postgres_admin: Admin, open_stores: Opener, version: str
) -> None:
    first = pg_store(open_stores, postgres_url)
    first.revision()
    meta = table(first, "meta")
    postgres_admin.execute(sql.SQL("UPDATE {} SET value = %s").format(meta), (version,))
    store = open_stores(postgres_url)
    with pytest.raises(SchemaError, match="Upgrade cohortroute"):
        store.revision()
    with pytest.raises(SchemaError):
        store.register_versions(["1"])

"""The PostgreSQL store against a real server: the shared suites, plus its tables and locking.

The behaviour every store shares is checked by the contract suite, and what both network stores
share by :class:`tests.store.network_contract.NetworkStoreContract`; this module adds the hooks
and what is PostgreSQL-specific. Needs the server from ``COHORTROUTE_TEST_POSTGRES_URL``
(tests/services.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cohortroute.errors import ConfigurationError, StoreError, StoreUnavailableError
from cohortroute.store import Store, open_store
from cohortroute.store._network import NetworkStore
from cohortroute.store.postgres import PostgresStore
from cohortroute.testing.contract import SharedStoreContract

# tests.services is a plugin of this module (fixtures) and a helper library (imports): have its
# asserts rewritten before importing it. Unneeded once tests/conftest.py loads the plugin itself.
pytest.register_assert_rewrite("tests.services", "tests.store.network_contract")
from tests.services import drop_schema, unique_name, with_query  # noqa: E402
from tests.store.network_contract import NetworkStoreContract  # noqa: E402

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

    def corrupt_policy(self, store: Store, text: str) -> None:
        assert isinstance(store, PostgresStore)
        store.revision()  # create the tables
        update = sql.SQL("UPDATE {} SET policy = %s::json").format(table(store, "state"))
        with store._connection("corrupting the policy") as conn:
            conn.execute(update, (text,))


class TestPostgresNetworkStore(NetworkStoreContract):
    """What PostgreSQL shares with Redis, through its hooks."""

    driver = "psycopg"
    extra = "postgres"
    unreachable_error = psycopg.OperationalError
    unreachable_url = "postgresql://cr:hunter2@127.0.0.1:{port}/test"
    listener_name = "cohortroute-postgres-l"

    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def admin(self, postgres_admin: Admin) -> Admin:
        return postgres_admin

    def kill_listener(self, admin: Any, store: NetworkStore[Any]) -> int:
        assert isinstance(store, PostgresStore)
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'cohortroute-listener' AND query LIKE %s",
            (f"%{store.channel}%",),
        ).fetchall()
        return sum(1 for (killed,) in rows if killed)

    def name_connections(self, url: str, name: str) -> str:
        return with_query(url, application_name=name)  # beats the store's default name

    def kill_named(self, admin: Any, name: str) -> int:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchall()
        return sum(1 for (killed,) in rows if killed)

    def set_schema_version(self, admin: Any, url: str, version: str) -> None:
        meta = table(PostgresStore(url), "meta")
        admin.execute(sql.SQL("UPDATE {} SET value = %s").format(meta), (version,))

    def break_for_write(self, admin: Any, store: NetworkStore[Any]) -> str:
        assert isinstance(store, PostgresStore)
        audit = table(store, "audit")
        admin.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT garbage CHECK (false) NOT VALID").format(audit)
        )
        return "garbage"

    def hung_url(self, port: int) -> tuple[str, str, float]:
        # libpq (and psycopg) wait at least 2 seconds for a connection.
        return f"postgresql://127.0.0.1:{port}/test?connect_timeout=1", "connect timeout 1s", 3.5


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

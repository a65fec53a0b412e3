"""The Redis store against a real server: atomic writes, push, reconnects, forks, failures.

The behaviour every store shares is checked by the contract suite; this module covers what is
Redis-specific. Needs the server from ``COHORTROUTE_TEST_REDIS_URL`` (see tests/services.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from cohortroute.errors import ConfigurationError, SchemaError, StoreError, StoreUnavailableError
from cohortroute.store import Store, open_store
from cohortroute.store.redis import RedisStore
from cohortroute.testing.contract import SharedStoreContract

# tests.services is a plugin of this module (fixtures) and a helper library (imports): have its
# asserts rewritten before importing it. Unneeded once tests/conftest.py loads the plugin itself.
pytest.register_assert_rewrite("tests.services")
from tests.services import (  # noqa: E402
    Pushes,
    check_nothing_lost,
    closed_port,
    delete_prefix,
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
pytestmark = pytest.mark.redis

Opener = Callable[[str], Store]


def redis_store(opener: Opener, url: str) -> RedisStore:
    store = opener(url)
    assert isinstance(store, RedisStore)
    return store


class TestRedisStore(SharedStoreContract):
    """The contract every shared store keeps, on the real server (one prefix per store)."""

    @pytest.fixture
    def store_factory(
        self, redis_server: str, redis_admin: redis.Redis
    ) -> Iterator[Callable[[], Store]]:
        made: list[tuple[Store, str]] = []

        def make() -> Store:
            prefix = unique_name() + ":"
            store = open_store(with_query(redis_server, prefix=prefix))
            made.append((store, prefix))
            return store

        yield make
        for store, prefix in made:
            store.close()
            delete_prefix(redis_admin, prefix)

    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url


# --- configuration (no server needed) ---------------------------------------------------------


def test_url_options_and_defaults() -> None:
    store = open_store("rediss://:s3cret@cache.internal:6380/2?prefix=app&timeout=0.5")
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:"
    assert store.connect_timeout == 1.0
    assert store.timeout == 0.5
    assert store.refresh_interval == 1.0
    assert "s3cret" not in repr(store)
    assert store.url == "rediss://:***@cache.internal:6380/2?prefix=app&timeout=0.5"
    assert RedisStore("redis://localhost").prefix == "cohortroute:"


@pytest.mark.parametrize("query", ["timeout=0", "connect_timeout=-1", "timeout=soon", "prefix="])
def test_bad_options_are_refused(query: str) -> None:
    with pytest.raises(ConfigurationError, match=r"redis://:\*\*\*@localhost/0"):
        open_store(f"redis://:pw@localhost/0?{query}")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'cohortroute\[redis\]'"):
        open_store("redis://127.0.0.1:6379/0")


def test_driver_is_imported_only_when_a_store_is_built() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["redis"] = None
        import cohortroute, cohortroute.store, cohortroute.store.redis
        from cohortroute.store import open_store
        try:
            open_store("redis://127.0.0.1:6379/0")
        except cohortroute.errors.ConfigurationError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'cohortroute[redis]'" in result.stdout


# --- atomic, revisioned writes ----------------------------------------------------------------


def test_layout_under_the_prefix(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener
) -> None:
    store = redis_store(open_stores, redis_url)
    assert store.revision() == 0
    store.register_versions(["1", "2"], default="1")
    store.pin("acme", "2")
    store.pin("beta", "2")
    store.unpin("beta")
    p = store.prefix
    assert sorted(k.decode() for k in redis_admin.keys(p + "*")) == [
        f"{p}audit",
        f"{p}audit:acme",
        f"{p}audit:beta",
        f"{p}policy",
        f"{p}revision",
        f"{p}schema",
        f"{p}tenants",
    ]
    assert redis_admin.hkeys(f"{p}tenants") == [b"acme"]  # an empty record is deleted
    assert store.revision() == 4
    assert [e.action for e in store.history(tenant="beta")] == ["unpin", "pin"]


def test_concurrent_threads_lose_no_write(redis_url: str, open_stores: Opener) -> None:
    run_in_threads(redis_url, workers=6, writes=15)
    check_nothing_lost(open_stores(redis_url), workers=6, writes=15)


def test_concurrent_processes_lose_no_write(redis_url: str, open_stores: Opener) -> None:
    run_in_processes(redis_url, workers=4, writes=15)
    check_nothing_lost(open_stores(redis_url), workers=4, writes=15)


# --- push -------------------------------------------------------------------------------------


def test_a_commit_is_pushed_to_other_instances(redis_url: str, open_stores: Opener) -> None:
    writer, reader = open_stores(redis_url), open_stores(redis_url)
    pushes = Pushes()
    reader.subscribe(pushes)
    reader.subscribe(pushes)  # still one listener thread
    assert pushes.wait_for(1, timeout=2), "the listener notifies once it is subscribed"
    assert len(listener_threads()) == 1
    started = time.monotonic()
    writer.register_versions(["1"])
    assert pushes.wait_for(2, timeout=1)
    assert time.monotonic() - started < 1


def test_listener_reconnects_after_the_server_drops_it(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener
) -> None:
    writer, reader = open_stores(redis_url), open_stores(redis_url)
    pushes = Pushes()
    reader.subscribe(pushes)
    assert pushes.wait_for(1, timeout=2)
    assert redis_admin.client_kill_filter(_type="pubsub") >= 1
    # Pushes sent while it was away are lost, so it tells subscribers to re-read on return.
    assert pushes.wait_for(2, timeout=3), "no notification after reconnecting"
    writer.register_versions(["1"])
    assert pushes.wait_for(3, timeout=1), "pushes do not flow after reconnecting"
    assert len(listener_threads()) == 1


def test_close_stops_the_listener(redis_url: str) -> None:
    store = open_store(redis_url)
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=2)
    store.close()
    assert listener_threads() == []
    assert store.revision() == 0  # reopens lazily, without restarting the listener
    assert listener_threads() == []
    store.close()


def test_a_dropped_store_stops_its_listener(redis_url: str) -> None:
    store = open_store(redis_url)
    store.register_versions(["1"])  # with pooled connections too
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=2)
    store.close()
    store.subscribe(pushes)
    assert pushes.wait_for(2, timeout=2)
    del store
    assert settle(lambda: listener_threads() == []), "listener outlived its store"


def test_no_thread_or_fd_leak(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener
) -> None:
    writer = open_stores(redis_url)
    writer.register_versions(["1"])
    redis_admin.ping()  # its connection is open before counting, too
    threads, fds = threading.active_count(), open_fds()
    for i in range(15):
        store = open_store(redis_url)
        pushes = Pushes()
        store.subscribe(pushes)
        assert pushes.wait_for(1, timeout=2)
        writer.set_rule(f"t{i}", "1")
        assert pushes.wait_for(2, timeout=2)
        assert store.policy().rules[-1] == (f"t{i}", "1")
        store.close()
    # Repeated outages: every reconnect replaces the connection, it never adds one.
    store = open_store(redis_url)
    pushes = Pushes()
    store.subscribe(pushes)
    for outage in range(1, 4):
        assert pushes.wait_for(outage, timeout=3)
        redis_admin.client_kill_filter(_type="pubsub")
    assert pushes.wait_for(4, timeout=3)
    store.close()
    assert settle(lambda: (threading.active_count(), open_fds()) == (threads, fds))


def test_a_killed_pooled_connection_is_replaced(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener
) -> None:
    name = unique_name()  # a client name in the URL marks this store's connections
    store = open_stores(with_query(redis_url, client_name=name))
    store.register_versions(["1"])
    ids = [c["id"] for c in redis_admin.client_list(_type="normal") if c["name"] == name]
    assert len(ids) == 1
    assert redis_admin.client_kill_filter(_id=ids[0]) == 1
    assert store.revision() == 1  # not an error: the dead connection is noticed and replaced
    store.pin("acme", "1")


# --- processes --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork with threads
def test_a_forked_child_opens_its_own_connections(redis_url: str, open_stores: Opener) -> None:
    store = open_stores(redis_url)
    store.register_versions(["1", "2"], default="1")  # the parent has a pooled connection
    pushes = Pushes()
    store.subscribe(pushes)
    assert pushes.wait_for(1, timeout=2)

    def child() -> bool:
        store.pin("forked", "2")
        ok = store.tenant("forked").pin == "2" and len(listener_threads()) == 1
        store.close()
        return ok

    assert in_child(child) == 0
    # The parent's connection and listener were not disturbed by the child.
    assert store.tenant("forked").pin == "2"
    assert pushes.wait_for(2, timeout=1)
    assert store.revision() == 2


def test_a_pid_change_alone_also_resets_connections(redis_url: str, open_stores: Opener) -> None:
    store = redis_store(open_stores, redis_url)
    store.revision()
    before = store._client
    store._pid = -1  # as if forked by something that bypasses os.register_at_fork
    assert store.revision() == 0
    assert store._client is not before


# --- failures ---------------------------------------------------------------------------------


def test_unreachable_server_fails_fast_and_clearly() -> None:
    port = closed_port()
    store = open_store(f"redis://:hunter2@127.0.0.1:{port}/0")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            store.revision()
        assert time.monotonic() - started < 1.0
        message = str(info.value)
        assert f"redis://:***@127.0.0.1:{port}/0" in message
        assert "hunter2" not in message
        assert "server is running" in message
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        with pytest.raises(StoreUnavailableError):
            store.pin("acme", "1")
    finally:
        store.close()


def test_hung_server_times_out() -> None:
    with silent_server() as port:
        store = open_store(f"redis://127.0.0.1:{port}/0?timeout=0.3")
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match=r"operation timeout 0\.3s"):
                store.revision()
            assert time.monotonic() - started < 1.5
        finally:
            store.close()


@pytest.mark.parametrize(
    ("key", "command", "call"),
    [
        ("revision", ("SET", "seven"), "revision"),
        ("revision", ("LPUSH", "1"), "revision"),
        ("policy", ("SET", "{not json"), "policy"),
        ("policy", ("SET", "[1, 2]"), "policy"),
        ("policy", ("SET", '{"rules": 5}'), "policy"),
        ("policy", ("HSET", "a", "b"), "policy"),
        ("tenants", ("HSET", "acme", "\xff"), "tenant"),
        ("tenants", ("HSET", "acme", '{"tags": 3}'), "tenant"),
        ("tenants", ("SET", "x"), "tenants"),
        ("audit", ("RPUSH", '{"revision": 1}'), "history"),
        ("audit", ("SET", "x"), "history"),
    ],
)
def test_garbage_in_the_store_raises_store_error(
    redis_url: str,
    redis_admin: redis.Redis,
    open_stores: Opener,
    key: str,
    command: tuple[str, ...],
    call: str,
) -> None:
    store = redis_store(open_stores, redis_url)
    verb, *args = command
    redis_admin.execute_command(verb, store.prefix + key, *args)
    reads: dict[str, Callable[[], object]] = {
        "revision": store.revision,
        "policy": store.policy,
        "tenant": lambda: store.tenant("acme"),
        "tenants": lambda: list(store.tenants()),
        "history": store.history,
    }
    with pytest.raises(StoreError, match=r"unreadable data|WRONGTYPE") as info:
        reads[call]()
    assert type(info.value) is StoreError


def test_a_write_over_garbage_changes_nothing(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener
) -> None:
    store = redis_store(open_stores, redis_url)
    store.register_versions(["1"], default="1")
    redis_admin.set(store.prefix + "audit:acme", "not a list")
    with pytest.raises(StoreError, match="audit:acme"):
        store.pin("acme", "1")
    assert store.revision() == 1
    assert store.tenant("acme").pin is None
    assert len(store.history()) == 2


@pytest.mark.parametrize("version", ["2", "zero", "0"])
def test_unknown_schema_version_raises_schema_error(
    redis_url: str, redis_admin: redis.Redis, open_stores: Opener, version: str
) -> None:
    prefix = RedisStore(redis_url).prefix
    redis_admin.set(prefix + "schema", version)
    store = open_stores(redis_url)
    with pytest.raises(SchemaError, match="Upgrade cohortroute"):
        store.revision()
    with pytest.raises(SchemaError):
        store.register_versions(["1"])


def test_an_unchanged_state_writes_nothing(redis_url: str, open_stores: Opener) -> None:
    store = open_stores(redis_url)
    assert store.register_versions(["1"], default="1") == 1
    assert store.register_versions(["1"], default="1") == 1
    assert store.revision() == 1


def test_extra_query_parameters_reach_redis_py(redis_url: str, open_stores: Opener) -> None:
    store = open_stores(with_query(redis_url, client_name="cohortroute-test", connect_timeout="2"))
    assert store.revision() == 0


def test_push_false_starts_no_listener(redis_url: str) -> None:
    def listening() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("cohortroute-redis-l"))

    store = open_store(f"{redis_url}&push=false")
    try:
        before = listening()
        store.subscribe(lambda: None)
        assert listening() == before  # no listener started for this store
    finally:
        store.close()


def test_push_takes_a_yes_or_no(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="push"):
        open_store(f"{redis_url}&push=maybe")

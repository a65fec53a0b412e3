"""The Redis store against a real server: the shared suites, plus its key layout.

The behaviour every store shares is checked by the contract suite, and what both network stores
share by :class:`tests.store.network_contract.NetworkStoreContract`; this module adds the hooks
and what is Redis-specific. Needs the server from ``COHORTROUTE_TEST_REDIS_URL``
(see tests/services.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cohortroute.errors import ConfigurationError, StoreError
from cohortroute.store import Store, open_store
from cohortroute.store._network import NetworkStore
from cohortroute.store.redis import RedisStore
from cohortroute.testing.contract import SharedStoreContract

# tests.services is a plugin of this module (fixtures) and a helper library (imports): have its
# asserts rewritten before importing it. Unneeded once tests/conftest.py loads the plugin itself.
pytest.register_assert_rewrite("tests.services", "tests.store.network_contract")
from tests.services import delete_prefix, unique_name, with_query  # noqa: E402
from tests.store.network_contract import NetworkStoreContract  # noqa: E402

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

    def corrupt_policy(self, store: Store, text: str) -> None:
        assert isinstance(store, RedisStore)
        store._conn().set(store.prefix + "policy", text)


class TestRedisNetworkStore(NetworkStoreContract):
    """What Redis shares with PostgreSQL, through its hooks."""

    driver = extra = "redis"
    unreachable_error = redis.ConnectionError
    unreachable_url = "redis://:hunter2@127.0.0.1:{port}/0"
    listener_name = "cohortroute-redis-l"
    connect_wait = 2.0

    @pytest.fixture
    def url(self, redis_url: str) -> str:
        return redis_url

    @pytest.fixture
    def admin(self, redis_admin: redis.Redis) -> redis.Redis:
        return redis_admin

    def kill_listener(self, admin: Any, store: NetworkStore[Any]) -> int:
        killed: int = admin.client_kill_filter(_type="pubsub")
        return killed

    def name_connections(self, url: str, name: str) -> str:
        return with_query(url, client_name=name)

    def kill_named(self, admin: Any, name: str) -> int:
        ids = [c["id"] for c in admin.client_list(_type="normal") if c["name"] == name]
        return sum(admin.client_kill_filter(_id=i) for i in ids)

    def set_schema_version(self, admin: Any, url: str, version: str) -> None:
        admin.set(RedisStore(url).prefix + "schema", version)

    def break_for_write(self, admin: Any, store: NetworkStore[Any]) -> str:
        assert isinstance(store, RedisStore)
        admin.set(store.prefix + "audit:acme", "not a list")
        return "audit:acme"

    def hung_url(self, port: int) -> tuple[str, str, float]:
        return f"redis://127.0.0.1:{port}/0?timeout=0.3", r"operation timeout 0\.3s", 1.5


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


# --- the key layout ---------------------------------------------------------------------------


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
    assert sorted(k.decode() if isinstance(k, bytes) else k for k in redis_admin.keys(p + "*")) == [
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
    redis_admin.execute_command(verb, store.prefix + key, *args)  # type: ignore[no-untyped-call]
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


def test_extra_query_parameters_reach_redis_py(redis_url: str, open_stores: Opener) -> None:
    store = open_stores(with_query(redis_url, client_name="cohortroute-test", connect_timeout="2"))
    assert store.revision() == 0

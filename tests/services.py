"""The real Redis and PostgreSQL servers that store tests run against (never mocks).

Where they are: ``COHORTROUTE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``) and
``COHORTROUTE_TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``). A server that
cannot be reached skips its tests on a developer's machine, with the reason; under ``CI=true`` it
fails them instead, because a CI job that silently skipped its service tests proves nothing.

Use it as a plugin from a test module (or conftest): ``pytest_plugins = ("tests.services",)``.
Each test gets its own empty store location -- a unique Redis key prefix, a unique PostgreSQL
schema -- removed afterwards, so tests never see each other's state. Mark service tests with
``pytest.mark.redis`` / ``pytest.mark.postgres`` (``-m "not redis"`` deselects them).
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from cohortroute.policy import Policy, TenantRecord
from cohortroute.store import Store, open_store

if TYPE_CHECKING:
    import psycopg
    import redis

REDIS_ENV = "COHORTROUTE_TEST_REDIS_URL"
POSTGRES_ENV = "COHORTROUTE_TEST_POSTGRES_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_POSTGRES_URL = "postgresql://127.0.0.1:5432/test"

#: ``pytest.param`` values for tests parametrized over the shared backends.
SHARED_BACKENDS = [
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]


def in_ci() -> bool:
    """True when running in CI (``CI=true``), where a missing server must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(service: str, env: str, url: str, reason: object) -> NoReturn:
    """Skip (or under ``CI=true`` fail) the current test because ``service`` is unreachable."""
    message = (
        f"{service} is not reachable at {url} ({reason}). Start it, or point {env} at one"
        f"{'' if in_ci() else ', to run these tests'}."
    )
    if in_ci():
        pytest.fail(f"{message} CI=true: a missing service fails the build.", pytrace=False)
    pytest.skip(message)


def _driver(name: str, extra: str) -> Any:
    """Import a driver; skip (or under ``CI=true`` fail) the test when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"the {name} package is not installed: pip install -e '.[test]' (or [{extra}])"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (or replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def unique_name() -> str:
    """A name no other test (or test run) uses: ``cohortroute_test_<random>``."""
    return f"cohortroute_test_{uuid.uuid4().hex[:12]}"


# --- Redis ------------------------------------------------------------------------------------


def redis_server_url() -> str:
    """The Redis URL tests use (from the environment, else the local default)."""
    return os.environ.get(REDIS_ENV) or DEFAULT_REDIS_URL


def redis_client(url: str) -> redis.Redis:
    """A raw redis-py client for poking at the server (caller closes it)."""
    module = _driver("redis", "redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client: redis.Redis = module.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    return client


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The Redis server URL, once it answered PING (else skip, or fail under CI=true)."""
    url = redis_server_url()
    client = redis_client(url)
    error: Exception | None = None
    try:
        client.ping()
    except Exception as exc:
        error = exc
    finally:
        client.close()
    if error is not None:  # outside the except block: the report shows the reason, no traceback
        unavailable("Redis", REDIS_ENV, url, error)
    return url


@pytest.fixture
def redis_admin(redis_server: str) -> Iterator[redis.Redis]:
    """A raw client on the test server, to inspect keys, write garbage or kill connections."""
    client = redis_client(redis_server)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_server: str, redis_admin: redis.Redis) -> Iterator[str]:
    """A store URL with a key prefix of its own; every key under it is deleted afterwards."""
    prefix = unique_name() + ":"
    yield with_query(redis_server, prefix=prefix)
    delete_prefix(redis_admin, prefix)


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (a test's store)."""
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_server_url() -> str:
    """The PostgreSQL URL tests use (from the environment, else the local default)."""
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL


def postgres_connection(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A raw autocommit psycopg connection for poking at the server (caller closes it)."""
    module = _driver("psycopg", "postgres")
    conn: psycopg.Connection[tuple[Any, ...]] = module.connect(
        url, autocommit=True, connect_timeout=2
    )
    return conn


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server URL, once it answered (else skip, or fail under CI=true)."""
    url = postgres_server_url()
    error: Exception | None = None
    try:
        postgres_connection(url).close()
    except Exception as exc:
        error = exc
    if error is not None:  # outside the except block: the report shows the reason, no traceback
        unavailable("PostgreSQL", POSTGRES_ENV, url, error)
    return url


@pytest.fixture
def postgres_admin(postgres_server: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A raw autocommit connection to the test database, to inspect, corrupt or terminate."""
    conn = postgres_connection(postgres_server)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def postgres_url(
    postgres_server: str, postgres_admin: psycopg.Connection[tuple[Any, ...]]
) -> Iterator[str]:
    """A store URL with a schema of its own (created on first use), dropped afterwards."""
    schema = unique_name()
    yield with_query(postgres_server, schema=schema)
    drop_schema(postgres_admin, schema)


def drop_schema(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> None:
    """Drop ``schema`` and everything in it (a test's store)."""
    from psycopg import sql

    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- stores -----------------------------------------------------------------------------------


class Pushes:
    """A change callback that counts its calls; :meth:`wait_for` blocks until enough arrived.

    Stores hold callbacks by weak reference: keep the object in a local for the whole test.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """True once at least ``count`` notifications arrived, False after ``timeout`` s."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)


def listener_threads() -> list[threading.Thread]:
    """The store listener threads alive in this process."""
    return [t for t in threading.enumerate() if t.name.startswith("cohortroute-")]


def open_fds() -> int:
    """How many file descriptors this process has open (Linux: /proc/self/fd)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting file descriptors needs /proc/self/fd")
    return len(os.listdir("/proc/self/fd"))


def settle(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``check`` (collecting garbage) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def closed_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port: int = sock.getsockname()[1]
        yield port


def _count(record: TenantRecord, policy: Policy) -> TenantRecord:
    return replace(record, state={**record.state, "n": int(record.state.get("n", 0)) + 1})


def hammer(url: str, worker: int, writes: int) -> None:
    """Write ``2 * writes`` times: increment one shared counter, tag the worker's own tenant.

    The increments are read-modify-write cycles on one record, so concurrent workers lose one
    the moment two commits interleave wrongly. Top level, so spawned processes can run it.
    """
    store = open_store(url)
    try:
        for i in range(writes):
            store.update_tenant("shared", "count", _count, actor=f"worker-{worker}")
            store.tag(f"worker-{worker}", f"t{i}", actor=f"worker-{worker}")
    finally:
        store.close()


def check_nothing_lost(store: Store, workers: int, writes: int) -> None:
    """Assert the outcome of ``workers`` concurrent :func:`hammer` runs: every write is there."""
    total = 2 * workers * writes
    assert store.tenant("shared").state == {"n": workers * writes}
    for worker in range(workers):
        assert store.tenant(f"worker-{worker}").tags == {f"t{i}" for i in range(writes)}
    assert store.revision() == total
    history = store.history(limit=total + 10)
    assert sorted(entry.revision for entry in history) == list(range(1, total + 1))
    shared = store.history(tenant="shared", limit=total + 10)
    assert len(shared) == workers * writes
    assert [e.after["state"]["n"] for e in shared] == list(range(workers * writes, 0, -1))


def run_in_threads(url: str, workers: int, writes: int) -> None:
    """Run :func:`hammer` in ``workers`` threads at once; re-raise the first failure."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work(worker: int) -> None:
        try:
            barrier.wait()
            hammer(url, worker, writes)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def run_in_processes(url: str, workers: int, writes: int) -> None:
    """Run :func:`hammer` in ``workers`` fresh (spawned) processes at once."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=hammer, args=(url, w, writes)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    codes = [process.exitcode for process in processes]
    for process in processes:
        process.close()
    assert codes == [0] * workers, f"writer processes exited with {codes}"


def in_child(body: Callable[[], object]) -> int:
    """Run ``body`` in a forked child; return its exit code (0 = it returned a truthy value)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if body() else 2
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def open_stores() -> Iterator[Callable[[str], Store]]:
    """``open_stores(url)`` opens a store that is closed when the test ends."""
    stores: list[Store] = []

    def opener(url: str) -> Store:
        store = open_store(url)
        stores.append(store)
        return store

    try:
        yield opener
    finally:
        for store in reversed(stores):
            store.close()


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> str:
    """The isolated URL of the backend a test is parametrized with (see SHARED_BACKENDS)."""
    backend = request.param
    if backend not in ("redis", "postgres"):
        raise ValueError(f"unknown backend {backend!r}")
    url: str = request.getfixturevalue(f"{backend}_url")
    return url

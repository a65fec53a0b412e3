"""Store faults below the router: a server that hangs mid-session, and state lost on the server.

A server restarted empty (Redis without persistence, a database recreated) forgets the versions
routers recorded when they started: the routers record them again as soon as they see it, so
operators can pin and roll out without restarting the fleet.

A hung server is simulated with the test's own :class:`~tests.faultproxy.FaultProxy` between the
store and the real server: ``slow()`` holds every byte, so the connection stays open and the
server never answers -- what a frozen server, a stuck pooler or a silent network look like.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.errors import StoreUnavailableError
from cohortroute.store import Store, open_store

from .apps import wsgi_version
from .faultproxy import FaultProxy

pytest.register_assert_rewrite("tests.services")
from tests.services import (  # noqa: E402
    SHARED_BACKENDS,
    delete_prefix,
    drop_schema,
    with_query,
)

pytest_plugins = ("tests.services",)

TIMEOUT = 0.5  # the stores' ?timeout= in these tests
CONNECT_BOUND = 2.0  # libpq (and psycopg) wait at least 2 s for a connection
MARGIN = 1.0  # for a loaded 2-CPU test machine
HOLD = 3600.0  # a proxy "slowed" this much never answers within a test


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's, everything else kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture
def proxy(backend_url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(backend_url)
    default_port = 6379 if parts.scheme.startswith("redis") else 5432
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port) as running:
        yield running


@pytest.fixture
def proxied(backend_url: str, proxy: FaultProxy) -> Iterator[Store]:
    """The test's store, reached through the proxy, with ``timeout=0.5``."""
    store = open_store(with_query(through(backend_url, proxy.port), timeout=str(TIMEOUT)))
    try:
        yield store
    finally:
        store.close()


def timed(call: Callable[[], object], limit: float) -> tuple[float, BaseException | None]:
    """Run ``call`` in a thread; (seconds it took, what it raised). Fails if it outlasts
    ``limit`` (the thread is left behind, a daemon, rather than hang the test run)."""
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"the store call was still blocked after {limit:g}s"
    return time.monotonic() - started, outcome[0]


CALLS: dict[str, Callable[[Store], object]] = {
    "revision": lambda store: store.revision(),
    "policy": lambda store: store.policy(),
    "tenant": lambda store: store.tenant("acme"),
    "write": lambda store: store.tag("acme", "beta", actor="test"),
}


@pytest.mark.parametrize("backend_url", SHARED_BACKENDS, indirect=True)
def test_a_server_that_stops_answering_mid_session_fails_each_call_in_time(
    proxied: Store, proxy: FaultProxy
) -> None:
    proxied.register_versions(["v1"], "v1", actor="test")  # connected, tables in place
    for name, call in CALLS.items():
        proxy.slow(HOLD)
        # A pooled connection hangs on its first round trip; a new one hangs while connecting.
        elapsed, error = timed(partial(call, proxied), CONNECT_BOUND + TIMEOUT + 5)
        assert isinstance(error, StoreUnavailableError), (name, error)
        assert elapsed < max(CONNECT_BOUND, TIMEOUT) + MARGIN, (name, elapsed)
        assert "server is running" in str(error)
        proxy.restore()
        elapsed, error = timed(partial(call, proxied), 10)
        assert error is None, (name, error)


@pytest.mark.postgres
def test_postgres_no_answer_to_a_statement_is_reported_as_such(
    postgres_url: str,
) -> None:
    parts = urlsplit(postgres_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        store = open_store(with_query(through(postgres_url, proxy.port), timeout=str(TIMEOUT)))
        try:
            assert store.revision() == 0
            proxy.slow(HOLD)
            elapsed, error = timed(store.revision, TIMEOUT + 5)
            assert isinstance(error, StoreUnavailableError)
            assert elapsed < TIMEOUT + MARGIN
            assert f"no answer from the server within {TIMEOUT:g}s" in str(error)
        finally:
            proxy.restore()
            store.close()


@pytest.mark.postgres
def test_postgres_listener_round_trips_are_bounded(postgres_url: str) -> None:
    from cohortroute.store.postgres import PostgresStore, _Listener

    parts = urlsplit(postgres_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        store = open_store(with_query(through(postgres_url, proxy.port), timeout=str(TIMEOUT)))
        assert isinstance(store, PostgresStore)
        listener = _Listener(store)  # not started: its connection is driven by hand
        conn: Any = listener._connect()
        try:
            proxy.slow(HOLD)
            elapsed, error = timed(lambda: conn.execute(listener._listen), TIMEOUT + 5)
            assert isinstance(error, store._psycopg.OperationalError), error
            assert elapsed < TIMEOUT + MARGIN
            assert conn.closed
        finally:
            proxy.restore()
            conn.close()
            store.close()


# --- a server restarted empty ---------------------------------------------------------------------


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Ask ``check`` every 20 ms (it drives the router) until it holds; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not check():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.02)
    return True


def served(router: Any, tenant: str) -> tuple[str, str]:
    """(version, reason) of one request for ``tenant``."""
    body = Client(router).get("/", headers={"Host": f"{tenant}.example.com"}).get_data(as_text=True)
    words = body.split()
    return words[0], words[2]


def wipe(url: str, request: pytest.FixtureRequest) -> None:
    """Empty the server's copy of the store, as a restart without persistence would."""
    where = dict(parse_qsl(urlsplit(url).query))
    if url.startswith("redis"):
        delete_prefix(request.getfixturevalue("redis_admin"), where["prefix"])
    else:
        drop_schema(request.getfixturevalue("postgres_admin"), where["schema"])


@pytest.mark.parametrize("backend_url", SHARED_BACKENDS, indirect=True)
def test_routers_record_their_versions_again_after_the_store_is_emptied(
    backend_url: str, request: pytest.FixtureRequest
) -> None:
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=backend_url,
        refresh_interval=0,
    )
    operator = open_store(backend_url)
    try:
        assert eventually(lambda: operator.policy().versions == {"v1", "v2"})
        operator.pin("acme", "v2")
        assert eventually(lambda: served(router, "acme") == ("v2", "pin"))

        wipe(backend_url, request)
        operator.close()  # a restarted server ends every session

        def pinned() -> bool:
            served(router, "globex")  # requests drive the router's refresh
            try:
                operator.pin("acme", "v2")
            except Exception:  # "unknown version" until the router has recorded its versions
                return False
            return True

        assert eventually(pinned), operator.policy()
        assert operator.policy().default == "v1"
        assert eventually(lambda: served(router, "acme") == ("v2", "pin"))
    finally:
        operator.close()
        router.close()

"""Store outages for real: a router reads Redis / PostgreSQL through a TCP proxy the test owns.

Each test puts a :class:`~tests.faultproxy.FaultProxy` between a router and the real server,
runs a bounded request loop (a few threads, a few seconds at most) and cuts, slows or restores
the proxy meanwhile, or writes straight to the server behind the router's back. What the router
promises, and these tests check:

* cut mid-run: 0 failed requests, every known tenant keeps its last-known decision, and a
  change written during the outage is served <= 2 s after the store returns;
* slow store: no request waits much longer than the lookup timeout, one look-up per tenant in
  flight at most;
* store down when the router starts: the default, at once, degraded; converges once back;
* repeated outages leak no thread and no file descriptor;
* a lost push is made up for by the periodic revision check (<= refresh interval + 1 s);
* garbage in the store: last-known-good or default, an error counter, one log line, no 500;
* look-ups that fail at once (an outage) never deadlock the router.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import sys
import threading
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.policy import TenantRecord, tenant_to_json
from cohortroute.store import Store

from .apps import wsgi_version
from .faultproxy import FaultProxy

# tests.services is a plugin of this module (fixtures) and a helper library (imports): have its
# asserts rewritten before importing it.
pytest.register_assert_rewrite("tests.services")
from tests.services import (  # noqa: E402
    SHARED_BACKENDS,
    closed_port,
    open_fds,
    settle,
    silent_server,
)

pytest_plugins = ("tests.services",)

REFRESH = 0.2  # the routers' refresh interval in these tests (seconds)
LOOKUP_TIMEOUT = 0.05  # the default
RESYNC_TARGET = 2.0  # the promise: state re-synced <= 2 s after the store returns
SLACK = 0.5  # for a loaded 2-CPU test machine; the behaviour is what is checked, not speed


# --- helpers ----------------------------------------------------------------------------------


def through(url: str, port: int) -> str:
    """``url`` with its port replaced by ``port`` (the proxy's), everything else kept."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def query(url: str, name: str) -> str:
    """The value of one query parameter of ``url``."""
    return dict(parse_qsl(urlsplit(url).query))[name]


def ask(router: Any, tenant: str) -> tuple[int, str, str, float]:
    """One request for ``tenant``: (status, version, reason, seconds); an exception is a 500."""
    host = tenant if "." in tenant else f"{tenant}.example.com"
    started = time.monotonic()
    try:
        response = Client(router).get("/", headers={"Host": host})
        status, body = response.status_code, response.get_data(as_text=True)
    except Exception as exc:  # a request that blew up: what must never happen
        status, body = 500, f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    words = body.split()
    if status != 200 or len(words) < 3:
        return status, body, "", elapsed
    return status, words[0], words[2], elapsed


def serves(router: Any, tenant: str, expected: str) -> bool:
    return version(router, tenant) == expected


def version(router: Any, tenant: str) -> str:
    status, served, _reason, _elapsed = ask(router, tenant)
    assert status == 200, served
    return served


def poll(check: Callable[[], bool], timeout: float, every: float = 0.01) -> float | None:
    """Seconds until ``check()`` held (checked every ``every`` s), None after ``timeout``.

    For what a real server, proxy or thread does in its own time; the router's own timing
    runs on an injected clock wherever a test can drive it.
    """
    started = time.monotonic()
    pause = threading.Event()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        pause.wait(every)


class Load:
    """A bounded request loop: ``threads`` threads asking for tenants until stopped.

    Every result is kept as (monotonic time, tenant, status, version, reason, seconds). Bounded
    twice: it stops after ``limit`` seconds or ``max_requests`` requests, whichever comes first.
    """

    def __init__(
        self,
        router: Any,
        tenants: list[str],
        *,
        newcomers: str | None = None,
        threads: int = 3,
        limit: float = 10.0,
        max_requests: int = 20_000,
    ) -> None:
        self.router = router
        self.tenants = tenants
        self.newcomers = newcomers
        self.results: list[tuple[float, str, int, str, str, float]] = []
        self._limit = limit
        self._max = max_requests
        self._stop = threading.Event()
        self._pace = 0.002  # leave the GIL to the proxy and the store threads now and then
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self._limit
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._limit + 5)
        assert not any(thread.is_alive() for thread in self._threads), "request loop hung"

    def _run(self, worker: int) -> None:
        tenants = itertools.cycle(self.tenants)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            n = next(self._counter)
            if n >= self._max:
                return
            # Every 7th request is a tenant nobody has seen yet (a cold look-up) when asked.
            if self.newcomers is not None and n % 7 == 0:
                tenant = f"{self.newcomers}{n}"
            else:
                tenant = next(tenants)
            at = time.monotonic()
            status, served, reason, elapsed = ask(self.router, tenant)
            with self._lock:
                self.results.append((at, tenant, status, served, reason, elapsed))
            self._stop.wait(self._pace)

    def count(self, since: float = 0.0) -> int:
        """How many requests were sent at or after monotonic time ``since``."""
        with self._lock:
            return sum(1 for result in self.results if result[0] >= since)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        """Let the load run until ``check()`` holds (bounded)."""
        assert poll(check, timeout) is not None, f"{what} within {timeout} s"


class Raw:
    """Writes straight into the server, behind every router's back (no push is sent)."""

    def __init__(self, backend: str, url: str, admin: Any) -> None:
        self.backend = backend
        self.admin = admin
        if backend == "redis":
            self.prefix = query(url, "prefix")
        else:
            schema = query(url, "schema")
            self.tenants = f'"{schema}".cohortroute_tenants'
            self.state = f'"{schema}".cohortroute_state'
            self.meta = f'"{schema}".cohortroute_meta'

    def tenant(self, name: str, text: str, bump: bool = True) -> None:
        """Store ``text`` as the tenant's record, and move the revision (one transaction)."""
        if self.backend == "redis":
            with self.admin.pipeline(transaction=True) as pipe:
                pipe.hset(f"{self.prefix}tenants", name, text)
                if bump:
                    pipe.incr(f"{self.prefix}revision")
                pipe.execute()
        else:
            with self.admin.transaction():
                self.admin.execute(
                    f"INSERT INTO {self.tenants} (name, record) VALUES (%s, %s::json) "
                    "ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
                    (name, text),
                )
                if bump:
                    self.admin.execute(f"UPDATE {self.state} SET revision = revision + 1")

    def pin(self, name: str, version: str) -> None:
        """A pin, written as a commit would, but whose push is lost."""
        self.tenant(name, json.dumps(tenant_to_json(TenantRecord(name, pin=version))))

    def policy(self, text: str) -> None:
        """Replace the policy with ``text`` and move the revision."""
        if self.backend == "redis":
            with self.admin.pipeline(transaction=True) as pipe:
                pipe.set(f"{self.prefix}policy", text)
                pipe.incr(f"{self.prefix}revision")
                pipe.execute()
        else:
            self.admin.execute(
                f"UPDATE {self.state} SET policy = %s::json, revision = revision + 1", (text,)
            )

    def revision(self, value: str) -> None:
        """Replace the revision with ``value`` (garbage, for Redis: it is a string there)."""
        if self.backend == "redis":
            self.admin.set(f"{self.prefix}revision", value)
        else:
            self.admin.execute(f"UPDATE {self.state} SET revision = %s::bigint", (value,))

    def schema_version(self, value: str) -> None:
        """Claim the store was written by a release with layout ``value``."""
        if self.backend == "redis":
            self.admin.set(f"{self.prefix}schema", value)
        else:
            self.admin.execute(
                f"UPDATE {self.meta} SET value = %s WHERE name = 'schema_version'", (value,)
            )

    def wrong_type(self) -> None:
        """Redis only: the tenants hash becomes a string, and the revision moves."""
        with self.admin.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self.prefix}tenants")
            pipe.set(f"{self.prefix}tenants", "not a hash")
            pipe.incr(f"{self.prefix}revision")
            pipe.execute()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(params=SHARED_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def url(backend: str, request: pytest.FixtureRequest) -> str:
    """The real, isolated store URL (a key prefix / schema of the test's own)."""
    value: str = request.getfixturevalue(f"{backend}_url")
    return value


@pytest.fixture
def raw(backend: str, url: str, request: pytest.FixtureRequest) -> Raw:
    return Raw(backend, url, request.getfixturevalue(f"{backend}_admin"))


@pytest.fixture
def proxy(url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 0) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def direct(url: str, open_stores: Callable[[str], Store]) -> Store:
    """The store as an operator sees it: straight to the server, never through the proxy."""
    store = open_stores(url)
    store.register_versions(["v1", "v2"], "v1", actor="test")
    return store


@pytest.fixture
def make_router() -> Iterator[Callable[..., Any]]:
    """``make_router(store_url, **options)``: a v1/v2 router, closed afterwards."""
    routers: list[Any] = []

    def make(store_url: str, **options: Any) -> Any:
        options.setdefault("refresh_interval", REFRESH)
        router = CohortRouter(
            {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
            domains=["example.com"],
            store=store_url,
            **options,
        )
        routers.append(router)
        return router

    yield make
    for router in routers:
        # Writes what it queued for the registry now, while the test's store still exists, and
        # stops its threads; closes its store.
        router.close()


def warm(router: Any, expected: dict[str, str], timeout: float = 5.0) -> None:
    """Ask for every tenant until each gets its expected version (bounded)."""
    waited = poll(lambda: all(version(router, t) == v for t, v in expected.items()), timeout)
    assert waited is not None, {t: version(router, t) for t in expected}


# --- cut mid-run ------------------------------------------------------------------------------


def test_cut_mid_run_fails_no_request_and_resyncs_after_restore(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any]
) -> None:
    router = make_router(through(url, proxy.port))
    direct.pin("acme", "v2")
    direct.pin("globex", "v2")
    expected = {"acme": "v2", "globex": "v2", "initech": "v1", "umbrella": "v1"}
    warm(router, expected)

    with Load(router, list(expected), newcomers="newcomer", limit=10.0) as load:
        load.wait_for(lambda: load.count() >= 50, "50 requests before the cut")
        cut_at = time.monotonic()
        proxy.cut()
        assert poll(lambda: router.status()["degraded"], timeout=2.0) is not None
        direct.pin("initech", "v2")  # written during the outage: this router cannot see it
        load.wait_for(
            lambda: (
                load.count(since=cut_at) >= 40
                and any(r[1].startswith("newcomer") for r in load.results if r[0] >= cut_at)
            ),
            "40 requests, a newcomer among them, during the outage",
        )
        restored_at = time.monotonic()
        proxy.restore()
        resynced = poll(lambda: version(router, "initech") == "v2", timeout=RESYNC_TARGET + 3)
        recovered = poll(lambda: not router.status()["degraded"], timeout=3.0)  # load runs
        after = time.monotonic()
        load.wait_for(lambda: load.count(since=after) >= 20, "20 requests after recovery")
    results = load.results

    assert resynced is not None, "the change written during the outage never arrived"
    assert resynced <= RESYNC_TARGET + SLACK, f"re-synced {resynced:.2f}s after the restore"
    assert recovered is not None, router.status()
    failed = [r for r in results if r[2] != 200]
    assert failed == [], f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    slowest = max(r[5] for r in results)
    assert slowest < 10 * LOOKUP_TIMEOUT, f"a request took {slowest:.3f}s"
    outage = [r for r in results if cut_at <= r[0] <= restored_at]
    assert len(outage) >= 20, f"only {len(outage)} requests during the outage"
    assert any(r[1].startswith("newcomer") for r in outage)
    wrong = []
    for at, tenant, _status, served, _reason, _seconds in results:
        if tenant.startswith("newcomer"):
            ok = served == "v1"  # never pinned: the default, known or not
        elif tenant == "initech" and at >= restored_at:
            ok = served in ("v1", "v2")  # the new pin may have arrived already
        else:
            ok = served == expected[tenant]  # the last-known decision, outage or not
        if not ok:
            wrong.append((round(at - cut_at, 3), tenant, served))
    assert wrong == [], f"{len(wrong)} wrong decisions (seconds after the cut): {wrong[:10]}"


def test_an_outage_right_after_a_change_keeps_every_last_known_decision(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any]
) -> None:
    """The revision moves (an unrelated pin), this router re-reads the policy, then the store
    goes away before it re-read acme's record: acme must keep its last-known version, and a
    newcomer (whose look-up fails) gets the default."""
    router = make_router(through(url, proxy.port), register_tenants=False)
    direct.pin("acme", "v2")
    warm(router, {"acme": "v2", "initech": "v1"})
    revision = direct.pin("globex", "v2")
    # Any request makes the router notice the new revision (pushed, or at the periodic check).
    seen = poll(lambda: version(router, "example.com") == "v1" and _revision(router) == revision, 3)
    assert seen is not None, router.status()
    proxy.cut()
    results = [ask(router, tenant) for tenant in ("acme", "initech", "newcomer", "acme")]
    assert poll(lambda: router.status()["degraded"], timeout=2.0) is not None, router.status()
    assert [(r[0], r[1]) for r in results] == [(200, "v2"), (200, "v1"), (200, "v1"), (200, "v2")]


def _revision(router: Any) -> int:
    revision: int = router.status()["revision"]
    return revision


# --- slow store -------------------------------------------------------------------------------


def test_a_slow_store_delays_no_request_and_sees_one_lookup_per_tenant(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any]
) -> None:
    router = make_router(through(url, proxy.port), register_tenants=False)
    direct.pin("acme", "v2")
    expected = {"acme": "v2", "initech": "v1"}
    warm(router, expected)

    # Count the look-ups the store gets, and how many run at once for one tenant.
    store: Store = router.store
    real_tenant = store.tenant
    lock = threading.Lock()
    running: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    def counting_tenant(name: str) -> TenantRecord:
        with lock:
            calls[name] += 1
            running[name] += 1
            peak[name] = max(peak[name], running[name])
        try:
            return real_tenant(name)
        finally:
            with lock:
                running[name] -= 1

    store.tenant = counting_tenant  # type: ignore[method-assign]
    connections = proxy.connections
    cold = ["slow-a", "slow-b", "slow-c"]  # asked over and over, never known
    proxy.slow(2.0)
    try:
        with Load(router, [*expected, *cold], threads=4, limit=5.0) as load:
            load.wait_for(
                lambda: (
                    load.count() >= 60
                    and all(sum(r[1] == t for r in load.results) >= 10 for t in cold)
                ),
                "60 requests, 10 for each cold tenant, during the slow spell",
            )
        results = load.results
        opened = proxy.connections - connections
        degraded = router.status()["degraded"]  # during the slow spell
    finally:
        proxy.restore()
        drained = poll(lambda: sum(running.values()) == 0, timeout=8.0, every=0.05)
    assert drained is not None, f"look-ups still running: {running}"

    assert len(results) >= 50, f"only {len(results)} requests"
    assert [r for r in results if r[2] != 200] == []
    slowest = max(r[5] for r in results)
    # Against a 2 s store (4 s a round trip), this proves nobody waited for it.
    assert slowest < 10 * LOOKUP_TIMEOUT, f"a request took {slowest:.3f}s"
    for _at, tenant, _status, served, _reason, _seconds in results:
        assert served == expected.get(tenant, "v1"), (tenant, served)
    asked = Counter(r[1] for r in results)
    assert all(asked[tenant] >= 10 for tenant in cold), asked
    assert set(peak.values()) <= {1}, f"concurrent look-ups of one tenant: {peak}"
    assert all(calls[tenant] == 1 for tenant in cold), f"look-ups during the slow spell: {calls}"
    assert opened <= 6, f"{opened} connections opened to the slow store: a thundering herd"
    assert degraded is True


def propagation(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any], active: int
) -> float:
    """Seconds until a pin shows, against a store that takes ~0.6 s a round trip, while
    ``active`` tenants are being asked for (every one of them cached before)."""
    router = make_router(through(url, proxy.port), register_tenants=False)
    tenants = [f"active{active}-{n}" for n in range(active)]
    warm(router, dict.fromkeys(tenants, "v1"), timeout=30)
    target = tenants[active // 2]
    proxy.slow(0.3)  # each way: ~0.6 s a round trip
    try:
        with Load(router, tenants, threads=3, limit=40.0):
            started = time.monotonic()
            direct.pin(target, "v2")
            waited = poll(lambda: version(router, target) == "v2", timeout=30.0, every=0.05)
    finally:
        proxy.restore()
    assert waited is not None, f"a pin took over 30 s to show with {active} active tenants"
    return time.monotonic() - started


def test_a_slow_store_shows_a_change_as_fast_with_400_active_tenants_as_with_10(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any]
) -> None:
    few = propagation(url, proxy, direct, make_router, 10)
    many = propagation(url, proxy, direct, make_router, 400)
    # Measured before batching: 3 s with 10 tenants, over 60 s with 400 (every tenant missed at
    # once, its look-up queued behind the others').
    assert many <= 2 * few + 2.0, f"{few:.1f} s with 10 active tenants, {many:.1f} s with 400"


# --- down at start ----------------------------------------------------------------------------


def test_a_router_started_while_the_store_is_down_serves_the_default_then_converges(
    url: str, proxy: FaultProxy, direct: Store, make_router: Callable[..., Any]
) -> None:
    proxy.cut()
    started = time.monotonic()
    # The store's own refresh interval (1 s): the 2 s re-sync holds with the defaults.
    router = make_router(through(url, proxy.port), refresh_interval=None)
    assert router._refresh_interval == 1.0
    built = time.monotonic() - started
    connect_timeout = router.store.connect_timeout
    assert built < connect_timeout, f"building the router took {built:.2f}s"
    results = [ask(router, tenant) for tenant in ("acme", "globex", "acme")]
    assert [(r[0], r[1], r[2]) for r in results] == [(200, "v1", "default")] * 3
    assert max(r[3] for r in results) < connect_timeout
    status = router.status()
    assert status["degraded"] is True and status["last_error"], status

    direct.pin("acme", "v2")
    assert [version(router, "acme") for _ in range(5)] == ["v1"] * 5  # it cannot see the pin
    revision = direct.revision()
    proxy.restore()

    def converged() -> bool:
        # The router refreshes on requests (it has no thread of its own): ask, then look.
        # The router's own writes (recording its versions, its tenants) may follow the pin.
        status = router.status()
        return (
            version(router, "acme") == "v2"
            and status["revision"] >= revision
            and not (status["degraded"])
        )

    waited = poll(converged, timeout=RESYNC_TARGET + 3)
    assert waited is not None, router.status()
    assert waited <= RESYNC_TARGET + SLACK, f"converged {waited:.2f}s after the restore"
    assert version(router, "globex") == "v1"


@pytest.mark.parametrize("server", ["closed-port", "hung-server"])
@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_a_router_whose_store_never_answers_serves_the_default_at_once(
    scheme: str, server: str, make_router: Callable[..., Any]
) -> None:
    pytest.importorskip("redis" if scheme == "redis" else "psycopg")
    with contextlib.ExitStack() as stack:
        # Refused at once, or accepted and never answered (a hung server).
        port = closed_port() if server == "closed-port" else stack.enter_context(silent_server())
        started = time.monotonic()
        router = make_router(f"{scheme}://127.0.0.1:{port}/x")
        results = [ask(router, tenant) for tenant in ("acme", "globex", "acme")]
        elapsed = time.monotonic() - started
        assert [(r[0], r[1]) for r in results] == [(200, "v1")] * 3
        assert elapsed < router.store.connect_timeout, f"{elapsed:.2f}s"
        assert max(r[3] for r in results) < 0.5
        assert router.status()["degraded"] is True
    # The hung server is gone now: its connections are reset, nothing waits for them.


# --- repeated outages -------------------------------------------------------------------------


def test_repeated_outages_leak_no_thread_and_no_file_descriptor(
    url: str, proxy: FaultProxy, direct: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # pytest keeps every log record of a test, and a warning that carries an exception (the
    # failed tenant registration, psycopg's note on the broken pipeline under it) keeps its
    # traceback, its frames and so the router alive: warnings are not recorded here. psycopg
    # sets its own logger to WARNING, so the root's level alone does not silence it.
    quiet_warnings(caplog)
    direct.pin("acme", "v1")  # the operator's connection is open before counting
    gc.collect()
    threads, fds = threading.active_count(), open_fds()

    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=through(url, proxy.port),
        refresh_interval=REFRESH,
    )
    try:
        during = outages(router, proxy, direct, cycles=8)
    finally:
        router.store.close()
    # While it ran: a bounded pool (4 look-up threads), one listener, a few sockets each...
    assert max(t for t, _ in during) <= threads + 8, (threads, during)
    assert max(f for _, f in during) <= fds + 16, (fds, during)
    # ... that did not grow from one outage to the next (a leak of one per outage would show
    # as 5 more; the pool filling up and proxied sockets closing late as a few at most).
    first, last = during[:3], during[-3:]
    assert max(t for t, _ in last) <= max(t for t, _ in first) + 3, during
    assert max(f for _, f in last) <= max(f for _, f in first) + 3, during
    # Closed and dropped: everything it had is gone.
    alive = weakref.ref(router)
    del router
    assert settle(lambda: threading.active_count() <= threads and open_fds() <= fds, 5.0), (
        f"before: {threads} threads, {fds} fds; after: {threading.active_count()} threads, "
        f"{open_fds()} fds; router {'alive' if alive() else 'collected'}; {thread_stacks()}"
    )


def quiet_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """Record only errors, from the root and from every logger that set a level of its own."""
    caplog.set_level(logging.ERROR)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logging.NOTSET < logger.level < logging.ERROR:
            caplog.set_level(logging.ERROR, logger=name)


def thread_stacks() -> str:
    """Where this process's cohortroute threads are (for a failure message)."""
    frames = sys._current_frames()
    return "\n".join(
        f"{t.name}:\n{''.join(traceback.format_stack(frames[t.ident]))}"
        for t in threading.enumerate()
        if t.name.startswith("cohortroute") and t.ident in frames
    )


def outages(router: Any, proxy: FaultProxy, direct: Store, cycles: int) -> list[tuple[int, int]]:
    """Cut, serve, change, restore and converge ``cycles`` times; (threads, fds) after each."""
    warm(router, {"acme": "v1"})
    during: list[tuple[int, int]] = []
    for cycle in range(cycles):
        proxy.cut()
        for i in range(20):
            assert ask(router, f"cycle{cycle}-{i % 4}")[0] == 200
            assert ask(router, "acme")[0] == 200
        assert router.status()["degraded"] is True
        want = "v2" if cycle % 2 == 0 else "v1"
        direct.pin("acme", want)
        proxy.restore()
        back = poll(partial(serves, router, "acme", want), timeout=4.0)
        assert back is not None, f"cycle {cycle}: {router.status()}"
        assert poll(lambda: not router.status()["degraded"], timeout=2.0) is not None
        during.append((threading.active_count(), open_fds()))
    return during


# --- push dropped -----------------------------------------------------------------------------


def test_a_lost_push_is_made_up_for_by_the_periodic_check(
    url: str, proxy: FaultProxy, raw: Raw, direct: Store, make_router: Callable[..., Any]
) -> None:
    interval = 1.0
    clock = ManualClock()
    router = make_router(
        through(url, proxy.port), refresh_interval=interval, register_tenants=False, clock=clock
    )
    warm(router, {"acme": "v1"})
    clock.advance(interval)  # whatever warming scheduled is behind us
    version(router, "acme")
    # The pin is written as a commit would write it, but no PUBLISH / NOTIFY goes out: the
    # push is lost, as when the listener is disconnected at that moment.
    raw.pin("acme", "v2")
    assert direct.tenant("acme").pin == "v2"  # a well-formed write
    clock.advance(interval)
    # The check is due: the first request makes it (the store answers in its own time, so
    # poll without moving the router's clock any further).
    assert poll(lambda: version(router, "acme") == "v2", timeout=3.0) is not None, router.status()
    assert router.status()["degraded"] is False


# --- garbage ----------------------------------------------------------------------------------

MARKS = {"redis": pytest.mark.redis, "postgres": pytest.mark.postgres}
GARBAGE = [
    ("tenant-not-json", ("redis",)),  # PostgreSQL's json column refuses it
    ("tenant-a-json-list", ("redis", "postgres")),
    ("tenant-tags-a-number", ("redis", "postgres")),
    ("policy-a-json-string", ("redis", "postgres")),
    ("revision-not-a-number", ("redis",)),  # a bigint column in PostgreSQL
    ("revision-negative", ("redis", "postgres")),
    ("tenants-not-a-hash", ("redis",)),
]


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        pytest.param(backend, kind, marks=MARKS[backend], id=f"{backend}-{kind}")
        for kind, backends in GARBAGE
        for backend in backends
    ],
)
def test_garbage_in_the_store_gets_last_known_good_or_default_never_a_500(
    kind: str,
    raw: Raw,
    url: str,
    direct: Store,
    make_router: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    router = make_router(url, register_tenants=False, clock=clock)
    direct.pin("acme", "v2")
    warm(router, {"acme": "v2", "initech": "v1"})
    errors = router.status()["store_errors"]
    caplog.set_level(logging.ERROR, logger="cohortroute")

    if kind == "tenant-not-json":
        raw.tenant("acme", "{not json")
    elif kind == "tenant-a-json-list":
        raw.tenant("acme", '["v2"]')
    elif kind == "tenant-tags-a-number":
        raw.tenant("acme", '{"pin": "v2", "tags": 5}')
    elif kind == "policy-a-json-string":
        raw.policy('"v2 for everybody"')
    elif kind == "revision-not-a-number":
        raw.revision("seven")
    elif kind == "revision-negative":
        raw.revision("-5")
    elif kind == "tenants-not-a-hash":
        raw.wrong_type()

    results = []
    for n in range(4):  # three refresh intervals: every one of them reads the garbage
        for tenant in ("acme", "initech", f"newcomer{n}"):
            results.append((tenant, ask(router, tenant)))
        clock.advance(REFRESH)
    assert [r for r in results if r[1][0] != 200] == []
    for tenant, (_status, served, _reason, _seconds) in results:
        # acme keeps its last-known-good version, even when its own record became unreadable.
        assert served == ("v2" if tenant == "acme" else "v1"), (tenant, served)
    status = router.status()
    assert status["store_errors"] > errors, status
    # One log line (the first failure of this router), however many failures followed: the
    # log is rate-limited. (last_error may be gone again: a good refresh clears it.)
    lines = [r.getMessage() for r in caplog.records if "degraded" in r.getMessage()]
    assert len(lines) == 1, lines[:3]


def test_a_version_nobody_mounts_gets_the_default(
    raw: Raw, url: str, direct: Store, make_router: Callable[..., Any]
) -> None:
    router = make_router(url, register_tenants=False)
    direct.pin("acme", "v2")
    warm(router, {"acme": "v2"})
    raw.pin("acme", "v9")  # bypasses validation: nobody mounts v9
    assert poll(lambda: ask(router, "acme")[1:3] == ("v1", "unmounted"), timeout=2.0) is not None
    assert all(ask(router, "acme")[:2] == (200, "v1") for _ in range(5))


def test_a_store_written_by_a_newer_release_gets_the_default_never_a_500(
    raw: Raw, url: str, direct: Store, make_router: Callable[..., Any]
) -> None:
    direct.pin("acme", "v2")
    raw.schema_version("2")  # a layout this release does not know: refuse to read it
    router = make_router(url, register_tenants=False)
    results = [ask(router, tenant) for tenant in ("acme", "initech", "acme")]
    assert [(r[0], r[1]) for r in results] == [(200, "v1")] * 3
    status = router.status()
    assert status["degraded"] is True and status["store_errors"] >= 1, status
    assert "schema version" in status["last_error"], status


# --- failing fast -----------------------------------------------------------------------------


def test_lookups_that_fail_at_once_never_deadlock_the_router(
    url: str, proxy: FaultProxy, make_router: Callable[..., Any]
) -> None:
    """During an outage a look-up fails at once, possibly before the request thread that
    started it takes its next step; very frequent thread switches make that likely."""
    router = make_router(through(url, proxy.port), register_tenants=False)
    warm(router, {"acme": "v1"})
    proxy.cut()
    answers: list[int] = []
    counter = itertools.count()
    deadline = time.monotonic() + 1.5

    def run() -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            if n >= 3000:
                return
            answers.append(ask(router, f"cold{n}")[0])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        hung = [thread for thread in threads if thread.is_alive()]
    finally:
        sys.setswitchinterval(interval)
    assert hung == [], f"{len(hung)} request threads hung after {len(answers)} requests"
    assert len(answers) >= 100 and set(answers) == {200}, Counter(answers)

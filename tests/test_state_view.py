"""The router's view of the store: last-known state, degraded mode, slow stores, single flight.

A slow store is a gate the test holds closed: whatever the router does meanwhile cannot have
waited for the store, because the store has not answered. Time-based behaviour (the record
cache's TTL, the rate-limited log line) runs on a ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, StoreUnavailableError, TenantRecord, changes
from cohortroute._clock import ManualClock
from cohortroute.state_view import LOG_EVERY, StateView
from cohortroute.store import MemoryStore

from .apps import asgi_version, communicator, wsgi_version


class FlakyStore(MemoryStore):
    """A memory store that can be taken down or held (a closed gate), standing in for a remote
    one."""

    remote: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.tenant_calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.revision_answered = threading.Event()

    def _check(self) -> None:
        self.gate.wait(10)
        if self.down:
            raise StoreUnavailableError("flaky store is down (test)")

    def revision(self) -> int:
        self._check()
        try:
            return super().revision()
        finally:
            self.revision_answered.set()

    def tenant(self, name: str) -> TenantRecord:
        self.tenant_calls += 1
        self._check()
        return super().tenant(name)


class CountingStore(MemoryStore):
    """A local memory store that counts tenant reads."""

    def __init__(self) -> None:
        super().__init__()
        self.tenant_calls = 0

    def tenant(self, name: str) -> TenantRecord:
        self.tenant_calls += 1
        return super().tenant(name)


@pytest.fixture
def store() -> Iterator[FlakyStore]:
    flaky = FlakyStore()
    yield flaky
    flaky.gate.set()  # never leave a look-up thread waiting


def router_for(store: MemoryStore, **options: Any) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        refresh_interval=0,
        **options,
    )


def version(router: CohortRouter, tenant: str) -> str:
    response = Client(router).get("/", headers={"Host": f"{tenant}.example.com"})
    assert response.status_code == 200
    return response.get_data(as_text=True).split()[0]


def test_store_outage_serves_last_known_decisions_then_recovers(store: FlakyStore) -> None:
    router = router_for(store)
    store.pin("acme", "v2")
    assert version(router, "acme") == "v2"
    store.down = True
    assert version(router, "acme") == "v2"  # last-known decision
    assert version(router, "newcomer") == "v1"  # never seen: the default
    assert router.status()["degraded"] is True
    assert "down" in router.status()["last_error"]
    store.down = False
    store.pin("newcomer", "v2")  # written while this router could not see it
    assert version(router, "newcomer") == "v2"
    assert router.status()["degraded"] is False


def test_router_starts_while_the_store_is_down(store: FlakyStore) -> None:
    store.down = True
    router = router_for(store)
    assert router.status()["degraded"] is True
    assert version(router, "acme") == "v1"
    store.down = False
    store.pin("acme", "v2")
    assert version(router, "acme") == "v2"
    assert router.store.policy().versions == {"v1", "v2"}  # registered once it came back


def test_slow_store_never_delays_a_request_beyond_the_lookup_timeout(store: FlakyStore) -> None:
    router = router_for(store, lookup_timeout=0.05)
    store.pin("acme", "v2")
    version(router, "warm")
    store.gate.clear()  # the store answers nothing until the gate opens
    # Had the request waited for the store, it would have got acme's pin (v2), and only after
    # the test opened the gate: it got the default because it gave up after the timeout.
    assert version(router, "acme") == "v1"
    assert "slow" in router.status()["last_error"]
    store.gate.set()


def test_one_lookup_per_tenant_in_flight(store: FlakyStore) -> None:
    router = router_for(store, lookup_timeout=0.01)
    version(router, "warm")
    store.gate.clear()  # every store call blocks until the gate opens
    store.tenant_calls = 0
    threads = [threading.Thread(target=version, args=(router, "acme")) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    store.gate.set()
    assert store.tenant_calls == 1


def test_a_briefly_slow_store_does_not_cost_the_router_its_cache(store: FlakyStore) -> None:
    router = router_for(store, lookup_timeout=0.2)
    for name in ("acme", "globex", "initech"):
        version(router, name)
    cached = router.status()["cached_hosts"]
    store.gate.clear()  # the next revision check times out: degraded, but nothing was guessed
    store.revision_answered.clear()
    version(router, "acme")
    assert router.status()["degraded"] is True
    store.gate.set()
    assert store.revision_answered.wait(5)  # the slow check finished
    version(router, "acme")
    assert router.status()["degraded"] is False
    assert router.status()["cached_hosts"] == cached


def test_a_slow_store_never_blocks_the_asgi_event_loop(store: FlakyStore) -> None:
    router = CohortRouter(
        {"v1": asgi_version("v1")}, domains=["example.com"], store=store, lookup_timeout=0.2
    )
    store.gate.clear()  # every store call now waits for the test

    async def scenario() -> tuple[int, int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                await asyncio.sleep(0)  # one turn of the loop
                ticks += 1

        task = asyncio.ensure_future(ticker())
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"host", b"newcomer.example.com")],
        }
        comm = communicator(router, scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(3)
        await comm.receive_output(3)
        await comm.wait(1)
        done = True
        await task
        return start["status"], ticks

    status, ticks = asyncio.run(scenario())
    assert status == 200  # served the default after the 0.2 s lookup timeout
    # The loop kept turning while the request waited for the store (a blocking wait: ~0 turns).
    assert ticks >= 100
    store.gate.set()
    router.close()


def test_tenant_records_expire_on_the_injected_clock() -> None:
    clock = ManualClock()
    store = CountingStore()
    view = StateView(store, ["v1"], "v1", on_change=lambda: None, record_ttl=300, clock=clock)
    view.refresh()
    assert view.tenant("acme") == TenantRecord("acme")
    assert view.tenant("acme") is not None
    assert store.tenant_calls == 1  # the second read came from the record cache
    clock.advance(299)
    view.tenant("acme")
    assert store.tenant_calls == 1
    clock.advance(2)
    view.tenant("acme")
    assert store.tenant_calls == 2  # expired: read again


def test_the_degraded_log_line_is_rate_limited_on_the_injected_clock(
    store: FlakyStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    store.down = True
    caplog.set_level(logging.ERROR, logger="cohortroute")
    view = StateView(store, ["v1"], "v1", on_change=lambda: None, clock=clock)

    def lines() -> int:
        return sum("degraded" in r.getMessage() for r in caplog.records)

    for _ in range(5):
        view.refresh()
    assert lines() == 1 and view.errors == 5
    clock.advance(LOG_EVERY - 1)
    view.refresh()
    assert lines() == 1
    clock.advance(1)
    view.refresh()
    assert lines() == 2
    view.close()


def test_a_record_guessed_while_the_store_was_slow_is_not_kept_as_fresh(store: FlakyStore) -> None:
    clock = ManualClock()
    router = router_for(store, clock=clock, register_tenants=False)
    router._refresh_interval = 3600.0  # no periodic check in this test: nothing else can help
    assert version(router, "acme") == "v1"
    store.commit(changes.pin("acme", "v2"), "test")  # behind the router's back: no push
    clock.advance(301)  # acme's record leaves the record cache (its TTL is 300 s)
    store.gate.clear()  # and the store is slow

    def upper() -> str:
        response = Client(router).get("/", headers={"Host": "ACME.example.com"})
        return response.get_data(as_text=True).split()[0]

    # Another Host of acme's misses the decision cache; its look-up times out and the last-known
    # record answers: v1, a guess.
    assert upper() == "v1"
    store.gate.set()  # the real record (pinned to v2) arrives
    pause = threading.Event()
    for _ in range(250):
        if upper() == "v2":
            break
        pause.wait(0.02)
    assert upper() == "v2", "a decision made from a guess outlived the real record"
    router.close()


def test_a_remote_store_lookup_under_trio(store: FlakyStore) -> None:
    """Under trio (no asyncio loop) a miss on a remote store waits on a worker thread: the
    record when the store answers, the default after the look-up timeout when it is held, and
    the loop keeps turning meanwhile."""
    import trio

    router = CohortRouter(
        {"v1": asgi_version("v1"), "v2": asgi_version("v2")},
        domains=["example.com"],
        store=store,
        lookup_timeout=0.2,
    )
    store.pin("acme", "v2")

    async def body(host: bytes) -> str:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host)]}
        await router(scope, receive, send)
        assert sent[0]["status"] == 200
        return bytes(sent[1]["body"]).decode().split()[0]

    async def scenario() -> tuple[str, str, int]:
        served = await body(b"acme.example.com")  # the store answers: the pin
        store.gate.clear()  # every store call now waits for the test
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                await trio.lowlevel.checkpoint()
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            held = await body(b"newcomer.example.com")
            done = True
        return served, held, ticks

    try:
        served, held, ticks = trio.run(scenario)
    finally:
        store.gate.set()
        router.close()
    assert served == "v2"
    assert held == "v1"  # the default, after the 0.2 s look-up timeout
    assert ticks >= 100  # the loop kept turning while the request waited


def test_a_tenant_served_while_the_store_was_slow_is_still_registered(store: FlakyStore) -> None:
    """A look-up the store is too slow for is decided without the tenant's record; its bucket
    may still put it on the candidate, so it must be registered like any tenant served, or the
    ratchet could not keep it there when the share is lowered."""
    from cohortroute.router import REGISTER_DELAY
    from tests.test_faults import poll

    clock = ManualClock()
    router = router_for(store, lookup_timeout=0.05, clock=clock)
    store.start_rollout("v2", 100, salt="slow")  # every tenant's bucket: the candidate
    version(router, "warm")
    store.gate.clear()  # the store answers nothing until the gate opens
    assert version(router, "newcomer") == "v2"  # by its bucket alone
    assert "slow" in router.status()["last_error"]
    store.gate.set()
    clock.advance(REGISTER_DELAY + 1)
    registered = poll(lambda: store.tenant("newcomer").registered, timeout=10)
    router.close()
    assert registered is not None, "served on the candidate, never registered"

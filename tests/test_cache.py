"""The router's view of the store: last-known state, degraded mode, slow stores, single flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, StoreUnavailableError, TenantRecord
from cohortroute.store import MemoryStore

from .apps import wsgi_version


class FlakyStore(MemoryStore):
    """A memory store that can be taken down or slowed, standing in for a remote one."""

    remote: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.delay = 0.0
        self.tenant_calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def _check(self) -> None:
        self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            raise StoreUnavailableError("flaky store is down (test)")

    def revision(self) -> int:
        self._check()
        return super().revision()

    def tenant(self, name: str) -> TenantRecord:
        self.tenant_calls += 1
        self._check()
        return super().tenant(name)


@pytest.fixture
def store() -> Iterator[FlakyStore]:
    yield FlakyStore()


def router_for(store: FlakyStore, **kwargs: object) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        refresh_interval=0,
        **kwargs,  # type: ignore[arg-type]
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
    store.delay = 3.0
    started = time.monotonic()
    assert version(router, "acme") == "v1"  # not known yet, store too slow: the default
    # Generous bound against a 3 s store: the request waited for the timeout, not the store.
    assert time.monotonic() - started < 1.0
    store.delay = 0.0


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
    router = router_for(store, lookup_timeout=0.05)
    for name in ("acme", "globex", "initech"):
        version(router, name)
    cached = router.status()["cached_hosts"]
    store.delay = 0.3  # the next revision check times out: degraded, but nothing was guessed
    version(router, "acme")
    assert router.status()["degraded"] is True
    store.delay = 0.0
    time.sleep(0.4)  # let the slow check finish
    version(router, "acme")
    assert router.status()["degraded"] is False
    assert router.status()["cached_hosts"] == cached


def test_a_slow_store_never_blocks_the_asgi_event_loop(store: FlakyStore) -> None:
    import asyncio

    from asgiref.testing import ApplicationCommunicator

    from .apps import asgi_version

    router = CohortRouter(
        {"v1": asgi_version("v1")}, domains=["example.com"], store=store, lookup_timeout=0.2
    )
    store.delay = 2.0  # every store call now takes 2 s

    async def scenario() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"host", b"newcomer.example.com")],
        }
        comm = ApplicationCommunicator(router, scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(3)
        await comm.receive_output(3)
        await comm.wait(1)
        task.cancel()
        return start["status"], ticks

    status, ticks = asyncio.run(scenario())
    assert status == 200  # served the default after the 0.2 s lookup timeout
    # The loop kept running while the request waited for the store (a blocking wait: 0 ticks).
    assert ticks >= 5
    store.delay = 0.0
    router.close()

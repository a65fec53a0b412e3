"""Routers record the tenants they serve in the store's registry: batched, once, off the request
path, and only tenants the app answers below 400. The delay runs on a ManualClock."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from werkzeug.test import Client

from cohortroute import CohortRouter, StoreUnavailableError
from cohortroute._clock import ManualClock
from cohortroute.demo.seed import SEED_TENANTS, seed
from cohortroute.demo.server import build_demo
from cohortroute.policy import Policy, TenantRecord
from cohortroute.router import REGISTER_DELAY, _exit
from cohortroute.router.registration import REGISTER_LIMIT, Registrar
from cohortroute.store import MemoryStore
from cohortroute.store.base import ChangeFn

from .apps import communicator, wsgi_version


def written(store: MemoryStore) -> threading.Event:
    """An event set at the store's next write (from whichever thread makes it)."""
    event = threading.Event()
    store.subscribe(event.set)
    return event


def test_routers_register_the_tenants_they_serve_batched_and_then_never_write() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        clock=clock,
    )
    client = Client(router)
    for name in ("acme", "globex", "initech"):
        assert client.get("/", headers={"Host": f"{name}.example.com"}).status_code == 200
    clock.advance(REGISTER_DELAY - 0.01)
    client.get("/", headers={"Host": "acme.example.com"})
    assert store.revision() == 1  # nothing written per request, nor before the delay
    write = written(store)
    clock.advance(0.01)
    client.get("/", headers={"Host": "acme.example.com"})  # a refresh: the batch is due
    assert write.wait(5)
    assert store.revision() == 2  # one write for the three of them
    assert {r.name for r in store.tenants() if r.registered} == {"acme", "globex", "initech"}
    for _ in range(3):
        for name in ("acme", "globex", "initech"):
            client.get("/", headers={"Host": f"{name}.example.com"})
    # A tenant answered while the first write was in flight may be queued again; flushing it
    # writes nothing, because it is registered already.
    assert router._registrar is not None
    router._registrar.flush()
    assert store.revision() == 2 and not router._registrar.pending  # steady state: no writes
    router.close()


def test_tenants_the_app_does_not_know_are_never_registered() -> None:
    # A flood of random subdomains must not grow the registry: only tenants the app answers
    # with a status below 400 are recorded.
    def app(environ: dict[str, object], start_response: Any) -> list[bytes]:
        known = environ["cohortroute.tenant"] in ("acme", "globex")
        start_response("200 OK" if known else "404 Not Found", [])
        return [b""]

    store = MemoryStore()
    router = CohortRouter({"v1": app}, domains=["example.com"], store=store)
    client = Client(router)
    for name in ("acme", "x7f3k", "globex", "zz9q0"):
        client.get("/", headers={"Host": f"{name}.example.com"})
    assert router._registrar is not None
    assert router._registrar.pending == {"acme", "globex"}
    router._registrar.flush()
    assert {r.name for r in store.tenants()} == {"acme", "globex"}


def test_asgi_routers_register_tenants_answered_below_400() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = 200 if scope["cohortroute.tenant"] == "acme" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    router = CohortRouter({"v1": app}, domains=["example.com"], store=MemoryStore())

    async def hit(host: str) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"host", host.encode())],
        }
        comm = communicator(router, scope)
        await comm.send_input({"type": "http.request", "body": b""})
        await comm.receive_output(2)
        await comm.receive_output(2)
        await comm.wait(1)

    asyncio.run(hit("acme.example.com"))
    asyncio.run(hit("nobody.example.com"))
    assert router._registrar is not None
    assert router._registrar.pending == {"acme"}


def test_names_the_registry_cannot_hold_are_skipped() -> None:
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1")},
        tenant_resolver=lambda host: host.split(".")[0].replace("-", "_"),
        store=store,
    )
    client = Client(router)
    client.get("/", headers={"Host": "acme.example.com"})
    client.get("/", headers={"Host": "big-corp.example.com"})  # tenant "big_corp"
    assert router._registrar is not None
    router._registrar.flush()
    assert [r.name for r in store.tenants()] == ["acme"] and not router._registrar.pending


def test_routers_can_leave_the_registry_alone() -> None:
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1")}, domains=["example.com"], store=store, register_tenants=False
    )
    Client(router).get("/", headers={"Host": "acme.example.com"})
    assert router._registrar is None
    assert list(store.tenants()) == []


class RefusingStore(MemoryStore):
    """A memory store whose registry writes fail while ``refuse`` is set."""

    refuse = True

    def update_tenants(self, *args: Any, **kwargs: Any) -> int:
        if self.refuse:
            raise StoreUnavailableError("registry down (test)")
        return super().update_tenants(*args, **kwargs)


def test_a_failed_registration_is_retried_after_the_delay() -> None:
    clock = ManualClock()
    store = RefusingStore()
    registrar = Registrar(store, clock=clock)
    registrar.add("acme")
    assert registrar.due == clock.monotonic() + REGISTER_DELAY
    clock.advance(REGISTER_DELAY)
    assert registrar.flush() == 0  # failed: logged, kept
    assert registrar.pending == {"acme"}
    assert registrar.due == clock.monotonic() + REGISTER_DELAY
    store.refuse = False
    assert registrar.flush() == 1
    assert [r.name for r in store.tenants()] == ["acme"] and not registrar.pending


def test_one_worker_writes_every_batch_and_leaves_with_its_router() -> None:
    clock = ManualClock()
    store = MemoryStore()
    registrar = Registrar(store, clock=clock)
    others = set(threading.enumerate())  # other routers' workers, still alive or not
    workers = set()
    for batch in range(3):
        write = written(store)
        registrar.add(f"t{batch}")
        clock.advance(REGISTER_DELAY)
        registrar.poke(clock.monotonic())
        assert write.wait(5)
        workers |= {
            t for t in threading.enumerate() if t.name == "cohortroute-register" and t not in others
        }
    assert len(workers) == 1  # the same thread wrote all three batches
    assert {r.name for r in store.tenants()} == {"t0", "t1", "t2"}
    (worker,) = workers
    del registrar
    worker.join(5)
    assert not worker.is_alive()


def served_once(router: Any, *tenants: str) -> None:
    client = Client(router)
    for name in tenants:
        assert client.get("/", headers={"Host": f"{name}.example.com"}).status_code == 200


def test_a_tenant_served_once_is_registered_with_no_request_after_it() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1")}, domains=["example.com"], store=store, clock=clock
    )
    served_once(router, "acme")  # and nothing reaches this router ever again
    write = written(store)
    clock.advance(REGISTER_DELAY)  # the worker waits on the router's clock
    assert write.wait(5)
    assert store.tenant("acme").registered
    router.close()


def test_closing_a_router_writes_what_it_queued() -> None:
    store = MemoryStore()
    router = CohortRouter({"v1": wsgi_version("v1")}, domains=["example.com"], store=store)
    served_once(router, "acme", "globex")
    router.close()
    assert {r.name for r in store.tenants() if r.registered} == {"acme", "globex"}


def test_what_is_queued_is_written_when_the_process_exits() -> None:
    store = MemoryStore()
    router = CohortRouter({"v1": wsgi_version("v1")}, domains=["example.com"], store=store)
    served_once(router, "acme")
    _exit.flush_all()  # what atexit (and the SIGTERM handler) runs
    assert store.tenant("acme").registered
    router.close()


def test_registration_is_rate_bounded_and_counts_what_it_drops() -> None:
    clock = ManualClock()
    store = MemoryStore()
    registrar = Registrar(store, clock=clock, limit=3, window=10.0)
    for name in ("a1", "a2", "a3", "a4", "a5"):
        registrar.add(name)
    assert registrar.pending == {"a1", "a2", "a3"} and registrar.dropped == 2
    registrar.add("a4")  # served again, still over the cap
    assert registrar.dropped == 3
    clock.advance(10.0)  # a new window: a dropped tenant is queued the next time it is served
    registrar.add("a4")
    assert registrar.pending == {"a1", "a2", "a3", "a4"}
    registrar.close()


class CountingStore(MemoryStore):
    """A memory store counting the reads routers make (not those inside its own writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self._writing = threading.local()

    def commit(self, change: ChangeFn, actor: str) -> int:
        self._writing.now = True
        try:
            return super().commit(change, actor)
        finally:
            self._writing.now = False

    def _count(self) -> None:
        if not getattr(self._writing, "now", False):
            self.reads += 1

    def tenant(self, name: str) -> TenantRecord:
        self._count()
        return super().tenant(name)

    def policy(self) -> Policy:
        self._count()
        return super().policy()


class CountedDrop:
    """A dispatcher's ``drop``, counting its calls under ``name``."""

    def __init__(self, name: str, counts: Counter[str], drop: Callable[[], None]) -> None:
        self.name, self.counts, self.drop = name, counts, drop

    def __call__(self) -> None:
        self.counts.update([self.name])
        self.drop()


def test_a_flood_of_random_hosts_is_bounded_and_drops_no_decision_cache() -> None:
    # An app that answers every subdomain 200: the worst case for the registry.
    clock = ManualClock()
    store = CountingStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1")}, domains=["example.com"], store=store, clock=clock
    )
    other = CohortRouter(  # another router on the same store, serving its own tenants
        {"v1": wsgi_version("v1")},
        domains=["example.com"],
        store=store,
        clock=clock,
        register_tenants=False,
    )
    served_once(other, "acme", "globex")
    drops = Counter[str]()
    for name, each in (("router", router), ("other", other)):
        counted = CountedDrop(name, drops, each._dispatch.drop)
        setattr(each._dispatch, "drop", counted)  # noqa: B010 - replacing a method on purpose
    flood = [f"x{n:05d}q" for n in range(2 * REGISTER_LIMIT)]
    reads = store.reads
    for n, host in enumerate(flood):
        served_once(router, host)
        if n % 100 == 99:  # a second passes every 100 requests: refreshes and batches fall due
            clock.advance(1.0)
            served_once(other, "acme", "globex")
    router.close()
    served_once(other, "acme", "globex")

    registered = [r.name for r in store.tenants() if r.registered]
    assert len(registered) == REGISTER_LIMIT  # the cap for one window, whatever the flood
    assert router.status()["registrations_dropped"] == REGISTER_LIMIT
    assert store.revision() <= 1 + REGISTER_LIMIT // 100 + 2  # a batch a second, not a write a host
    assert drops == {}, drops  # registration writes never drop a decision cache
    assert other.status()["cached_hosts"] == 2
    assert store.reads - reads <= len(flood) + 5  # one read per new host, nothing re-read
    other.close()


def test_the_demo_registers_no_host_it_does_not_know() -> None:
    store = MemoryStore()
    seed(store)
    router, _site = build_demo(store, port=8000, command="cohortroute")
    client = Client(router)
    for host in ("acme.localhost", "zq7x1.localhost", "random123.localhost"):
        assert client.get("/", headers={"Host": host}).status_code == 200
    router.close()
    assert {r.name for r in store.tenants() if r.registered} == set(SEED_TENANTS)


def test_once_written_a_tenant_is_no_longer_watched_and_the_cache_is_kept() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1")}, domains=["example.com"], store=store, clock=clock
    )
    served_once(router, "acme", "globex")
    watched = {key: entry[2] for key, entry in router._entries.items()}
    assert all(hasattr(app, "watched_app") for app in watched.values())
    write = written(store)
    clock.advance(REGISTER_DELAY)
    assert write.wait(5)
    pause = threading.Event()
    for _ in range(250):  # the worker takes the watch off right after its write
        if not any(hasattr(entry[2], "watched_app") for entry in router._entries.values()):
            break
        pause.wait(0.02)
    assert set(router._entries) == set(watched)  # same hosts, nothing re-decided
    assert not any(hasattr(entry[2], "watched_app") for entry in router._entries.values())
    router.close()

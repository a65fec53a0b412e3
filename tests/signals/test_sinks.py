"""The signal sink contract, on every backend: memory, SQLite, and real Redis and PostgreSQL.

Each test gets its own store location (a temporary SQLite file, a Redis key prefix, a
PostgreSQL schema: see tests/services.py), opens the sink next to it and checks what every
sink promises: rows round-trip and add up commutatively (also from two processes at once),
filters, tickets deduplicated on (source, external_id), and pruning.
"""

from __future__ import annotations

import multiprocessing
import pathlib
import threading
from collections.abc import Iterator

import pytest

from cohortroute.signals import SignalRow, SignalSink, Ticket, open_sink
from cohortroute.store import Store, open_store

pytest.register_assert_rewrite("tests.services")
pytest_plugins = ("tests.services",)

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]
SHARED = BACKENDS[1:]  # the backends several processes share


def hist(bucket: int, count: int = 1) -> tuple[int, ...]:
    return tuple(count if i == bucket else 0 for i in range(15))


def row(minute: int, tenant: str, version: str = "v1", n: int = 1, **kw: object) -> SignalRow:
    fields: dict[str, object] = {
        "requests": n,
        "status": (0, n, 0, 0, 0),
        "duration_sum": 0.25 * n,
        "histogram": hist(6, n),
    }
    fields.update(kw)
    return SignalRow(minute, tenant, version, **fields)  # type: ignore[arg-type]


def _location(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    backend = request.param
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    found: str = request.getfixturevalue(f"{backend}_url")
    return found


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """An empty store location on each backend."""
    return _location(request, tmp_path)


@pytest.fixture(params=SHARED)
def shared_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """An empty store location on each backend several processes can share."""
    return _location(request, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture
def sink(store: Store) -> Iterator[SignalSink]:
    opened = open_sink(store)
    yield opened
    opened.close()


def test_rows_round_trip_with_every_field(sink: SignalSink) -> None:
    full = SignalRow(
        100,
        "acme",
        "v2",
        requests=7,
        status=(1, 2, 1, 1, 2),
        exceptions=1,
        slow=3,
        duration_sum=4.5,
        histogram=tuple(range(15)),
        cpu_sum=0.125,
    )
    odd = row(100, "acme", 'v2.1+"quoted"\\', n=2)  # every character a name could hold
    sink.add([full, row(100, "", "v1"), odd])
    assert sink.rows(100) == [row(100, "", "v1"), full, odd]


def test_increments_add_up_whatever_the_order(sink: SignalSink) -> None:
    sink.add([row(5, "acme", n=1), row(6, "acme"), row(5, "acme", n=1)])  # one key twice
    sink.add([row(5, "acme", n=3, exceptions=1, slow=1, cpu_sum=0.5)])
    [five, six] = sink.rows(0)
    assert five == row(5, "acme", n=2) + row(5, "acme", n=3, exceptions=1, slow=1, cpu_sum=0.5)
    assert five.requests == 5 and five.histogram == hist(6, 5) and five.duration_sum == 1.25
    assert six == row(6, "acme")


def test_rows_filter_by_minutes_versions_and_tenants(sink: SignalSink) -> None:
    rows = [row(m, t, v) for m in (10, 11, 12) for t in ("a", "b") for v in ("v1", "v2")]
    sink.add(rows)
    assert [r.minute for r in sink.rows(11)] == [11] * 4 + [12] * 4
    assert {r.minute for r in sink.rows(10, 12)} == {10, 11}
    assert sink.rows(10, versions=["v2"], tenants=["b"]) == [
        row(m, "b", "v2") for m in (10, 11, 12)
    ]
    assert sink.rows(10, tenants=[]) == []
    many = [f"t{i}" for i in range(600)] + ["a"]  # longer than one IN (...) list
    assert {r.tenant for r in sink.rows(10, tenants=many)} == {"a"}


def test_tickets_are_deduplicated_on_source_and_external_id(sink: SignalSink) -> None:
    first = Ticket("acme", "zendesk", "42", "high", 1_000.0, "v2", "checkout broken")
    assert sink.add_ticket(first) is True
    assert sink.add_ticket(Ticket("acme", "zendesk", "42", "low", 1_500.0, "v1")) is False
    assert sink.add_ticket(Ticket("beta", "intercom", "42", "normal", 900.0, "v1")) is True
    assert sink.tickets(0) == [
        Ticket("beta", "intercom", "42", "normal", 900.0, "v1"),
        first,
    ]
    assert sink.tickets(950.0, 1_000.0) == []
    assert sink.tickets(1_000.0, 1_000.5) == [first]


def test_prune_deletes_older_minutes_and_tickets(sink: SignalSink) -> None:
    sink.add([row(m, "acme") for m in (1, 2, 3)])
    sink.add_ticket(Ticket("acme", "cli", "old", "low", 60.0, "v1"))
    sink.add_ticket(Ticket("acme", "cli", "new", "low", 180.0, "v1"))
    assert sink.prune(3) > 0
    assert [r.minute for r in sink.rows(0)] == [3]
    assert [t.external_id for t in sink.tickets(0)] == ["new"]
    assert sink.prune(3) == 0


def test_the_sink_of_a_store_and_of_its_url_share_the_rows(store: Store, url: str) -> None:
    first, second = open_sink(store), open_sink(store if url == "memory://" else url)
    try:
        first.add([row(1, "acme")])
        assert second.rows(0) == [row(1, "acme")]
    finally:
        first.close()
        second.close()


def _flush_many(url: str, worker: int, flushes: int) -> None:
    sink = open_sink(url)
    try:
        for i in range(flushes):
            sink.add([row(7, "shared"), row(7, f"own{worker}", n=i + 1), row(8 + i % 2, "shared")])
    finally:
        sink.close()


def _check_nothing_lost(sink: SignalSink, workers: int, flushes: int) -> None:
    rows = {r.key: r for r in sink.rows(0)}
    assert rows[(7, "shared", "v1")] == row(7, "shared", n=workers * flushes)
    assert rows[(8, "shared", "v1")].requests + rows[(9, "shared", "v1")].requests == (
        workers * flushes
    )
    for worker in range(workers):
        assert rows[(7, f"own{worker}", "v1")].requests == flushes * (flushes + 1) // 2


def test_concurrent_threads_lose_nothing(sink: SignalSink, url: str, store: Store) -> None:
    if url == "memory://":
        shared = sink

        def work(worker: int) -> None:
            for i in range(20):
                shared.add(
                    [row(7, "shared"), row(7, f"own{worker}", n=i + 1), row(8 + i % 2, "shared")]
                )

    else:

        def work(worker: int) -> None:
            _flush_many(url, worker, 20)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _check_nothing_lost(sink, 3, 20)


def test_two_processes_flushing_at_once_lose_nothing(shared_url: str) -> None:
    url = shared_url
    context = multiprocessing.get_context("fork")  # fast, and the sinks must be fork-safe
    processes = [context.Process(target=_flush_many, args=(url, w, 30)) for w in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0]
    sink = open_sink(url)
    try:
        _check_nothing_lost(sink, 2, 30)
    finally:
        sink.close()

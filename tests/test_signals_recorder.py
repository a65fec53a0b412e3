"""The recorder: flushing on the clock, never blocking a request on a failing sink, bounds, fork.

Time is a ManualClock; the flush thread waits on it, so advancing the clock wakes it, and the
tests wait for its write on an Event (never a sleep).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, SignalsConfig
from cohortroute._clock import ManualClock
from cohortroute.signals import OVERFLOW_TENANT
from cohortroute.signals.recorder import PRUNE_INTERVAL
from tests.services import in_child
from tests.signals.helpers import RecordingSink

START_MINUTE = 29_833_333


def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def router(sink: RecordingSink, clock: ManualClock, **config: Any) -> Any:
    return CohortRouter(
        {"v1": ok},
        domains=["example.com"],
        clock=clock,
        signals=SignalsConfig(sink=sink, **config),
        register_tenants=False,
    )


def get(app: Any, tenant: str) -> None:
    Client(app).get("/", headers={"Host": f"{tenant}.example.com"})


def test_the_flush_thread_writes_every_flush_interval(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock, flush_interval=5)
    get(r, "acme")  # starts the thread
    assert not sink.written.is_set()
    clock.advance(5)
    assert sink.written.wait(10), "the flush thread did not write after flush_interval"
    assert [(row.tenant, row.requests) for row in sink.rows(0)] == [("acme", 1)]
    r.close()


def test_a_failing_sink_keeps_the_rows_and_they_are_written_when_it_is_back(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock)
    sink.down = True
    get(r, "acme")
    assert r.signals.flush() == 0  # never raises
    get(r, "acme")
    status = r.signals.status()
    assert status["unsent_rows"] == 1 and status["write_failures"] == 1
    assert "down" in status["last_error"]
    sink.down = False
    assert r.signals.flush() == 1
    assert [row.requests for row in sink.rows(0)] == [2]  # nothing lost, nothing twice
    assert r.signals.status()["unsent_rows"] == 0


def test_after_a_failure_the_thread_backs_off(clock: ManualClock, sink: RecordingSink) -> None:
    r = router(sink, clock, flush_interval=5)
    sink.down = True
    get(r, "acme")
    r.signals.flush()
    assert 0 < r.signals.until_due() <= 1.0  # the first retry comes sooner than a flush
    for _ in range(6):
        r.signals.flush()
    assert r.signals.until_due() > 1.0  # and later ones back off


def test_unsent_rows_are_bounded_and_the_oldest_minutes_dropped(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock, max_unsent=2)
    sink.down = True
    for minute in range(4):
        get(r, "acme")
        if minute == 3:
            get(r, "beta")
        r.signals.flush()
        clock.advance(60)
    status = r.signals.status()
    assert status["unsent_rows"] == 2
    assert (status["dropped_rows"], status["dropped_requests"]) == (3, 3)
    sink.down = False
    r.signals.flush()
    assert [(row.minute - START_MINUTE, row.tenant) for row in sink.rows(0)] == [
        (3, "acme"),
        (3, "beta"),
    ]


def test_old_minutes_are_pruned_once_an_hour(clock: ManualClock, sink: RecordingSink) -> None:
    r = router(sink, clock, retention_days=1)
    get(r, "acme")
    r.signals.flush()
    assert sink.prunes == [START_MINUTE - 1440]
    r.signals.flush()
    assert len(sink.prunes) == 1
    clock.advance(PRUNE_INTERVAL)
    r.signals.flush()
    assert len(sink.prunes) == 2


def test_a_forked_child_never_writes_the_parents_counts(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock)
    get(r, "acme")

    def child() -> bool:
        written = r.signals.flush()
        get(r, "beta")
        return written == 0 and r.signals.flush() == 1 and sink.writes == [1]

    assert in_child(child) == 0
    assert r.signals.flush() == 1
    assert [row.tenant for row in sink.rows(0)] == ["acme"]


def test_threads_counting_while_flushes_run_lose_nothing(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock, max_rows=1_000)
    app = r.signals  # the recorder
    wrapped = r._dispatch.target("v1")
    environs = [{"cohortroute.tenant": f"t{i % 7}"} for i in range(7)]
    stop = threading.Event()
    per_thread = 3_000

    def count() -> None:
        for i in range(per_thread):
            wrapped(dict(environs[i % 7]), lambda *a: None)

    def flush() -> None:
        while not stop.is_set():
            app.flush()

    flusher = threading.Thread(target=flush)
    flusher.start()
    workers = [threading.Thread(target=count) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    stop.set()
    flusher.join(60)
    app.flush()
    assert sum(row.requests for row in sink.rows(0)) == 4 * per_thread
    assert sum(row.histogram[0] for row in sink.rows(0)) == 4 * per_thread


def test_close_writes_what_is_counted_and_closes_the_sink(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock)
    get(r, "acme")
    r.close()
    assert [row.requests for row in sink.rows(0)] == [1] and sink.closed == 1


def test_overflow_rows_are_flushed_under_their_own_tenant(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(sink, clock, max_rows=1)
    get(r, "acme")
    get(r, "beta")
    r.signals.flush()
    get(r, "gamma")  # a new flush period: room again
    r.signals.flush()
    assert {row.tenant for row in sink.rows(0)} == {"acme", OVERFLOW_TENANT, "gamma"}


def test_a_hung_sink_never_blocks_a_request(clock: ManualClock) -> None:
    entered, release = threading.Event(), threading.Event()

    class Hung(RecordingSink):
        def add(self, rows: Any) -> None:
            entered.set()
            release.wait(30)
            super().add(rows)

    sink = Hung()
    r = router(sink, clock, flush_interval=5)
    get(r, "acme")
    clock.advance(5)
    assert entered.wait(10), "the flush thread never wrote"
    for _ in range(3):
        get(r, "acme")  # served while the flush thread is stuck in the sink
    release.set()
    assert sink.written.wait(10)
    r.signals.flush()
    assert sum(row.requests for row in sink.rows(0)) == 4

"""OpenTelemetry metrics from the signal sink: the SDK's in-memory reader sees the flushed rows,
with the Prometheus endpoint's bounded tenant labels, counters that only grow, one store read
per collection, and a clear error without the package."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.errors import ConfigurationError, StoreUnavailableError
from cohortroute.signals import SignalRow, open_sink, prometheus_app, register_otel_metrics
from cohortroute.signals.sinks.memory import MemorySink

NOW = 29_833_333  # ManualClock's default wall time, in epoch minutes
Points = dict[tuple[str, frozenset[tuple[str, Any]]], float]


@dataclass
class Otel:
    """An SDK meter provider whose in-memory reader collects on demand."""

    provider: MeterProvider
    reader: InMemoryMetricReader

    def collect(self) -> Points:
        """Every data point of one collection: (instrument name, attributes) -> value."""
        found: Points = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name in ("cohortroute", "the-app")
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attributes = frozenset((point.attributes or {}).items())
                        found[(metric.name, attributes)] = point.value  # type: ignore[union-attr]
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield Otel(provider, reader)
    provider.shutdown()


def at(name: str, version: str, tenant: str, **extra: str) -> tuple[str, frozenset[Any]]:
    return (name, frozenset({"version": version, "tenant": tenant, **extra}.items()))


def tenants(points: Points, name: str = "cohortroute.requests") -> set[str]:
    return {dict(attrs)["tenant"] for metric, attrs in points if metric == name}


def row(tenant: str, version: str, n: int, minute: int = NOW) -> SignalRow:
    histogram = tuple(n if i == 2 else 0 for i in range(15))
    return SignalRow(minute, tenant, version, n, (0, n, 0, 0, 0), 0, 0, 0.02 * n, histogram)


def timed(clock: ManualClock, seconds: float, status: str = "200 OK") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        clock.advance(seconds)
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def get(app: Any, tenant: str | None) -> None:
    host = "example.com" if tenant is None else f"{tenant}.example.com"
    Client(app).get("/", headers={"Host": host})


def test_rows_flushed_by_a_router_become_data_points(tmp_path: Path, otel: Otel) -> None:
    clock = ManualClock()
    router = CohortRouter(
        {"v1": timed(clock, 0.25), "v2": timed(clock, 3.0, "404 Not Found")},
        domains=["example.com"],
        store=f"sqlite:///{tmp_path}/state.db",
        clock=clock,
        signals=True,
    )
    router.store.pin("beta", "v2")
    for tenant in ("acme", "acme", "beta", None):
        get(router, tenant)
    assert router.signals is not None
    router.signals.flush()
    register_otel_metrics(otel.provider, router.store, clock=clock)
    points = otel.collect()
    requests = {k: v for k, v in points.items() if k[0] == "cohortroute.requests"}
    assert requests == {
        at("cohortroute.requests", "v1", "acme", status="2xx"): 2,
        at("cohortroute.requests", "v2", "beta", status="4xx"): 1,
        at("cohortroute.requests", "v1", "__none__", status="2xx"): 1,
    }
    assert points[at("cohortroute.request.duration.count", "v1", "acme")] == 2
    assert points[at("cohortroute.request.duration.sum", "v1", "acme")] == pytest.approx(0.5)
    bucket = "cohortroute.request.duration.bucket"
    assert points[at(bucket, "v1", "acme", le="0.1")] == 0
    assert points[at(bucket, "v1", "acme", le="0.25")] == 2
    assert points[at(bucket, "v2", "beta", le="2.5")] == 0
    assert points[at(bucket, "v2", "beta", le="5.0")] == 1
    assert points[at(bucket, "v2", "beta", le="+Inf")] == 1
    assert points[at("cohortroute.exceptions", "v2", "beta")] == 0
    assert points[at("cohortroute.slow_requests", "v2", "beta")] == 1  # slower than the 1 s SLO
    router.close()


def test_counters_only_grow_and_a_collection_reads_the_store_once(
    otel: Otel,
) -> None:
    class Counting(MemorySink):
        reads = 0

        def rows(self, *args: Any, **kwargs: Any) -> list[SignalRow]:
            self.reads += 1
            return super().rows(*args, **kwargs)

    clock = ManualClock()
    sink = Counting()
    sink.add([row("acme", "v1", 3)])
    register_otel_metrics(otel.provider, sink, clock=clock)
    acme = at("cohortroute.requests", "v1", "acme", status="2xx")
    assert otel.collect()[acme] == 3
    assert sink.reads == 1  # seven instruments, one read
    sink.add([row("acme", "v1", 2)])
    assert otel.collect()[acme] == 3  # within `cache` seconds: the same read
    assert sink.reads == 1
    clock.advance(1.0)
    assert otel.collect()[acme] == 5
    clock.advance(60.0)  # a new minute: its row adds to the same counter
    sink.add([row("acme", "v1", 4, minute=NOW + 1)])
    assert otel.collect()[acme] == 9
    clock.advance(10 * 60.0)  # every row has left the window: the counter keeps its total
    sink.add([row("acme", "v1", 1, minute=NOW + 11)])
    assert otel.collect()[acme] == 10
    assert sink.reads == 4


def test_only_candidate_and_top_tenants_keep_a_label(otel: Otel) -> None:
    clock = ManualClock()
    sink = MemorySink()
    sink.add(
        [row(f"t{i}", "v1", 10 + i) for i in range(10)]
        + [row("small", "v2", 1), row("", "v1", 3), row("old", "v1", 99, minute=NOW - 10)]
    )
    register_otel_metrics(otel.provider, sink, top=2, candidate=lambda: "v2", clock=clock)
    points = otel.collect()
    assert tenants(points) == {"t9", "t8", "small", "__other__", "__none__"}
    for instrument in ("cohortroute.request.duration.count", "cohortroute.exceptions"):
        assert tenants(points, instrument) == tenants(points)
    other = at("cohortroute.requests", "v1", "__other__", status="2xx")
    assert points[other] == sum(10 + i for i in range(8))  # t0..t7 ("old" is out of window)

    # t0 becomes the busiest: it takes a label, and __other__ keeps what it had counted.
    sink.add([row("t0", "v1", 100)])
    clock.advance(1.0)
    points = otel.collect()
    assert tenants(points) == {"t0", "t9", "small", "__other__", "__none__"}
    assert points[at("cohortroute.requests", "v1", "t0", status="2xx")] == 100
    assert points[other] == sum(10 + i for i in range(8))
    assert points[at("cohortroute.requests", "v1", "t9", status="2xx")] == 19


def test_the_first_read_shows_what_the_prometheus_endpoint_shows(
    otel: Otel,
) -> None:
    def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    clock = ManualClock()
    router = CohortRouter({"v1": ok, "v2": ok}, domains=["example.com"], clock=clock)
    router.store.start_rollout("v2", "1%")
    open_sink(router.store).add(
        [row(f"t{i}", "v1", 50 + i) for i in range(5)] + [row("tiny", "v2", 1)]
    )
    register_otel_metrics(otel.provider, router.store, top=1, clock=clock)
    points = otel.collect()
    text = Client(prometheus_app(router.store, top=1, clock=clock)).get("/").get_data(as_text=True)
    prometheus = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("cohortroute_requests{")
    }
    assert tenants(points) == {"t4", "tiny", "__other__"}  # the rollout's candidate: tiny
    assert len(prometheus) == sum(1 for name, _ in points if name == "cohortroute.requests")
    for (name, attrs), value in points.items():
        if name == "cohortroute.requests":
            labels = dict(attrs)
            key = 'cohortroute_requests{{version="{version}",tenant="{tenant}",status="{status}"}}'
            assert prometheus[key.format(**labels)] == value


def test_a_sink_that_fails_skips_a_collection_and_the_counts_go_on(
    otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(MemorySink):
        down = False

        def rows(self, *args: Any, **kwargs: Any) -> list[SignalRow]:
            if self.down:
                raise StoreUnavailableError("the store is down")
            return super().rows(*args, **kwargs)

    clock = ManualClock()
    sink = Flaky()
    sink.add([row("acme", "v1", 3)])
    register_otel_metrics(otel.provider, sink, clock=clock)
    acme = at("cohortroute.requests", "v1", "acme", status="2xx")
    assert otel.collect()[acme] == 3
    sink.down = True
    sink.add([row("acme", "v1", 2)])
    clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger="cohortroute.signals.otel"):
        assert otel.collect() == {}
    assert "the store is down" in caplog.text
    sink.down = False
    clock.advance(1.0)
    assert otel.collect()[acme] == 5


def test_a_meter_of_the_apps_own_is_used_as_it_is(otel: Otel) -> None:
    sink = MemorySink()
    sink.add([row("acme", "v1", 3)])
    counters = register_otel_metrics(otel.provider.get_meter("the-app"), sink, clock=ManualClock())
    assert len(counters) == 7
    data = otel.reader.get_metrics_data()
    assert data is not None
    [scope] = data.resource_metrics[0].scope_metrics
    assert scope.scope.name == "the-app"
    assert otel.collect()[at("cohortroute.requests", "v1", "acme", status="2xx")] == 3


def test_without_opentelemetry_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An entry of None in sys.modules makes the import fail, as when the package is missing.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'cohortroute\[otel\]'"):
        register_otel_metrics(None, MemorySink())

"""The Prometheus text endpoint: generated from the sink, bounded labels, cumulative buckets."""

from __future__ import annotations

from typing import Any

from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.errors import StoreUnavailableError
from cohortroute.signals import SignalRow, open_sink, prometheus_app
from cohortroute.signals.sinks.memory import MemorySink

NOW = 29_833_333  # ManualClock's default wall time, in epoch minutes


def row(tenant: str, version: str, n: int, minute: int = NOW, bucket: int = 2) -> SignalRow:
    histogram = tuple(n if i == bucket else 0 for i in range(15))
    return SignalRow(minute, tenant, version, n, (0, n - 1, 0, 0, 1), 1, 0, 0.02 * n, histogram)


def scrape(app: Any) -> tuple[int, str, str]:
    response = Client(app).get("/metrics")
    return response.status_code, response.headers["Content-Type"], response.get_data(as_text=True)


def samples(text: str) -> dict[str, float]:
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_buckets_are_cumulative_and_count_matches() -> None:
    sink = MemorySink()
    sink.add([row("acme", "v1", 4, bucket=2), row("acme", "v1", 1, bucket=14)])
    status, content_type, text = scrape(prometheus_app(sink, clock=ManualClock()))
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    found = samples(text)
    labels = 'version="v1",tenant="acme"'
    bucket = "cohortroute_request_duration_seconds_bucket"
    assert found[f'{bucket}{{{labels},le="0.005"}}'] == 0
    assert found[f'{bucket}{{{labels},le="0.025"}}'] == 4
    assert found[f'{bucket}{{{labels},le="10.0"}}'] == 4
    assert found[f'{bucket}{{{labels},le="+Inf"}}'] == 5
    assert found[f"cohortroute_request_duration_seconds_count{{{labels}}}"] == 5
    assert found[f'cohortroute_requests{{{labels},status="5xx"}}'] == 2
    assert found[f"cohortroute_exceptions{{{labels}}}"] == 2
    assert "# TYPE cohortroute_request_duration_seconds histogram" in text


def test_only_candidate_and_top_tenants_keep_a_label() -> None:
    sink = MemorySink()
    sink.add(
        [row(f"t{i}", "v1", 10 + i) for i in range(10)]
        + [row("small", "v2", 1), row("", "v1", 3), row("old", "v1", 99, minute=NOW - 10)]
    )
    app = prometheus_app(sink, top=2, candidate=lambda: "v2", clock=ManualClock())
    tenants = {
        key.split('tenant="')[1].split('"')[0]
        for key in samples(scrape(app)[2])
        if key.startswith("cohortroute_requests{")
    }
    assert tenants == {"t9", "t8", "small", "__other__", "__none__"}  # "old" is out of window


def test_a_router_store_gives_the_rollouts_candidate() -> None:
    def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    router = CohortRouter({"v1": ok, "v2": ok}, domains=["example.com"])
    router.store.start_rollout("v2", "1%")
    sink = open_sink(router.store)
    sink.add([row(f"t{i}", "v1", 50 + i) for i in range(5)] + [row("tiny", "v2", 1)])
    text = scrape(prometheus_app(router.store, top=1, clock=ManualClock()))[2]
    assert 'tenant="tiny"' in text and 'tenant="t4"' in text and 'tenant="t0"' not in text


def test_a_sink_that_fails_answers_503() -> None:
    class Down(MemorySink):
        def rows(self, *args: Any, **kwargs: Any) -> list[SignalRow]:
            raise StoreUnavailableError("down")

    status, _, text = scrape(prometheus_app(Down(), clock=ManualClock()))
    assert status == 503 and "down" in text


def test_a_store_url_gives_the_rollouts_candidate(tmp_path: Any) -> None:
    def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    url = f"sqlite:///{tmp_path}/state.db"
    router = CohortRouter({"v1": ok, "v2": ok}, domains=["example.com"], store=url)
    router.store.start_rollout("v2", "1%")
    open_sink(router.store).add(
        [row(f"t{i}", "v1", 50 + i) for i in range(5)] + [row("tiny", "v2", 1)]
    )
    text = scrape(prometheus_app(url, top=1, clock=ManualClock()))[2]
    assert 'tenant="tiny"' in text and 'tenant="t4"' in text and 'tenant="t0"' not in text

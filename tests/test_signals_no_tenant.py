"""Requests with no tenant keep their own row past ``max_rows`` (one row per version), so the
Prometheus endpoint still shows them as ``__none__`` instead of folding them into ``__other__``."""

from __future__ import annotations

from typing import Any

from werkzeug.test import Client

from cohortroute import CohortRouter, SignalsConfig
from cohortroute._clock import ManualClock
from cohortroute.signals import OVERFLOW_TENANT, prometheus_app
from tests.signals.helpers import RecordingSink


def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def test_no_tenant_requests_keep_their_row_past_max_rows() -> None:
    clock = ManualClock()
    sink = RecordingSink()
    router = CohortRouter(
        {"v1": ok},
        domains=["example.com"],
        clock=clock,
        signals=SignalsConfig(sink=sink, max_rows=2),
        register_tenants=False,
    )
    recorder = router.signals
    assert recorder is not None
    client = Client(router)
    for host in ("a", "b", "c", "d", None, None, "a"):
        client.get("/", headers={"Host": f"{host}.example.com" if host else "example.com"})
    assert recorder.status()["overflowed_requests"] == 2  # c and d, not the no-tenant ones
    recorder.flush()
    assert {row.tenant: row.requests for row in sink.rows(0)} == {
        "a": 2,
        "b": 1,
        OVERFLOW_TENANT: 2,
        "": 2,
    }
    text = Client(prometheus_app(sink, clock=clock)).get("/metrics").get_data(as_text=True)
    assert 'cohortroute_requests{version="v1",tenant="__none__",status="2xx"} 2' in text
    assert 'cohortroute_requests{version="v1",tenant="__other__",status="2xx"} 2' in text
    router.close()

"""Signals on the request path: what the WSGI and ASGI wrappers count, in a router and standalone.

Durations come from a ManualClock the apps advance, so every bucket and SLO boundary is exact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, Signals, SignalsConfig
from cohortroute._clock import ManualClock
from cohortroute._types import ASGIApp, Message
from cohortroute.errors import ConfigurationError, StoreUnavailableError
from cohortroute.signals import OVERFLOW_TENANT, SignalRow, TenantLogFilter, open_sink
from cohortroute.store import open_store
from tests.signals.helpers import RecordingSink

START_MINUTE = 29_833_333  # ManualClock's default wall time, in epoch minutes


def hist(*buckets: int) -> tuple[int, ...]:
    counts = [0] * 15
    for bucket in buckets:
        counts[bucket] += 1
    return tuple(counts)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)  # durations then subtract exactly


def timed_app(clock: ManualClock, seconds: float = 0.0, status: str = "200 OK") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        clock.advance(seconds)
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def failing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise RuntimeError("the candidate is broken")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def router(apps: dict[str, Any], sink: RecordingSink, clock: ManualClock, **config: Any) -> Any:
    return CohortRouter(
        apps,
        domains=["example.com"],
        clock=clock,
        signals=SignalsConfig(sink=sink, **config),
        register_tenants=False,
    )


def get(app: Any, tenant: str | None) -> Any:
    host = "example.com" if tenant is None else f"{tenant}.example.com"
    return Client(app).get("/", headers={"Host": host})


def test_requests_are_counted_per_tenant_version_and_status_class(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router(
        {"v1": timed_app(clock, 0.375), "v2": timed_app(clock, 0.00390625, "404 Not Found")},
        sink,
        clock,
    )
    r.store.pin("beta", "v2")
    for tenant in ("acme", "acme", "beta", None):
        get(r, tenant)
    assert r.signals.flush() == 3
    assert sink.rows(0) == [
        SignalRow(START_MINUTE, "", "v1", 1, (0, 1, 0, 0, 0), 0, 0, 0.375, hist(7)),
        SignalRow(START_MINUTE, "acme", "v1", 2, (0, 2, 0, 0, 0), 0, 0, 0.75, hist(7, 7)),
        SignalRow(START_MINUTE, "beta", "v2", 1, (0, 0, 0, 1, 0), 0, 0, 0.00390625, hist(0)),
    ]
    r.close()


@pytest.mark.parametrize(
    ("seconds", "bucket", "slow"),
    [
        (0.0, 0, 0),
        (0.005, 0, 0),
        (0.0051, 1, 0),
        (1.0, 9, 0),
        (1.5, 10, 1),
        (10.0, 13, 1),
        (11.0, 14, 1),
    ],
)
def test_histogram_buckets_and_the_slo(
    clock: ManualClock, sink: RecordingSink, seconds: float, bucket: int, slow: int
) -> None:
    r = router({"v1": timed_app(clock, seconds)}, sink, clock, slo=1.0)
    # The tenant's first request takes the path that adds its row, the second the warm path.
    get(r, "acme")
    get(r, "acme")
    r.signals.flush()
    [row] = sink.rows(0)
    assert row.histogram == hist(bucket, bucket) and row.slow == 2 * slow
    assert row.duration_sum == pytest.approx(2 * seconds)


def test_an_unhandled_exception_counts_as_5xx_and_is_raised(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router({"v1": failing_app}, sink, clock)
    with pytest.raises(RuntimeError):
        get(r, "acme")
    r.signals.flush()
    [row] = sink.rows(0)
    assert (row.requests, row.status, row.exceptions) == (1, (0, 0, 0, 0, 1), 1)


def _streaming(clock: ManualClock, fail: bool = False) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(3):
            clock.advance(0.02)
            yield b"chunk"
        if fail:
            raise OSError("lost the upstream")

    return app


def _drive(app: Any, environ: dict[str, Any]) -> list[bytes]:
    """Serve one request as a WSGI server does: iterate the body, then close it."""
    body = app(environ, lambda status, headers, exc_info=None: None)
    try:
        return list(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def test_a_streaming_body_is_timed_until_closed_and_passed_through(
    clock: ManualClock, sink: RecordingSink
) -> None:
    app = Signals(
        _streaming(clock),
        version="v1",
        store="memory://",
        config=SignalsConfig(sink=sink),
        clock=clock,
    )
    assert _drive(app, {"cohortroute.tenant": "acme"}) == [b"chunk"] * 3
    app.flush()
    [row] = sink.rows(0)
    assert row.duration_sum == pytest.approx(0.06) and row.histogram == hist(4)
    assert row.status == (0, 1, 0, 0, 0)


def test_an_exception_while_streaming_counts_as_5xx(
    clock: ManualClock, sink: RecordingSink
) -> None:
    app = Signals(
        _streaming(clock, fail=True),
        version="v1",
        store="memory://",
        config=SignalsConfig(sink=sink),
        clock=clock,
    )
    with pytest.raises(OSError):
        _drive(app, {"cohortroute.tenant": "acme"})
    app.flush()
    [row] = sink.rows(0)
    assert (row.status, row.exceptions) == ((0, 0, 0, 0, 1), 1)


def test_standalone_signals_take_the_tenant_from_the_proxy_header_or_the_host(
    clock: ManualClock, sink: RecordingSink
) -> None:
    app = Signals(
        timed_app(clock),
        version="v2",
        store="memory://",
        config=SignalsConfig(sink=sink),
        domains=["example.com"],
        clock=clock,
    )
    client = Client(app)
    client.get("/", headers={"Host": "x.example.com", "X-Cohortroute-Tenant": "Acme"})
    client.get("/", headers={"Host": "beta.example.com"})
    client.get("/", headers={"Host": "beta.example.com", "X-Cohortroute-Tenant": "not a tenant"})
    client.get("/", headers={"Host": "elsewhere.org"})
    app.flush()
    assert {(r.tenant, r.version): r.requests for r in sink.rows(0)} == {
        ("acme", "v2"): 1,
        ("beta", "v2"): 1,
        ("", "v2"): 2,
    }


def test_a_router_never_lets_a_client_header_name_the_tenant(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router({"v1": timed_app(clock)}, sink, clock)
    Client(r).get("/", headers={"Host": "example.com", "X-Cohortroute-Tenant": "acme"})
    r.signals.flush()
    assert [row.tenant for row in sink.rows(0)] == [""]


def test_requests_are_counted_in_the_minute_they_end(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router({"v1": timed_app(clock)}, sink, clock)
    get(r, "acme")
    clock.advance(45)  # the first minute ends 40 s after ManualClock's start
    get(r, "acme")
    get(r, "acme")
    r.signals.flush()
    assert [(row.minute, row.requests) for row in sink.rows(0)] == [
        (START_MINUTE, 1),
        (START_MINUTE + 1, 2),
    ]


def test_past_max_rows_further_tenants_are_counted_as_overflow(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router({"v1": timed_app(clock)}, sink, clock, max_rows=2)
    for tenant in ("a", "b", "c", "d", "a"):
        get(r, tenant)
    assert r.signals.status()["overflowed_requests"] == 2
    r.signals.flush()
    assert {row.tenant: row.requests for row in sink.rows(0)} == {
        "a": 2,
        "b": 1,
        OVERFLOW_TENANT: 2,
    }


def test_cpu_time_is_sampled_and_scaled(clock: ManualClock, sink: RecordingSink) -> None:
    def busy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sum(i * i for i in range(200_000))
        start_response("200 OK", [])
        return [b""]

    r = router({"v1": busy}, sink, clock, cpu_sample=2)
    for _ in range(4):
        get(r, "acme")
    r.signals.flush()
    [row] = sink.rows(0)
    assert row.cpu_sum > 0


def test_the_log_filter_adds_tenant_and_version(clock: ManualClock, sink: RecordingSink) -> None:
    seen: list[tuple[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.tenant, record.version))  # type: ignore[attr-defined]

    handler = Keep()
    handler.addFilter(TenantLogFilter())
    logger = logging.getLogger("tests.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        logger.info("serving")
        start_response("200 OK", [])
        return [b""]

    try:
        r = router({"v1": app}, sink, clock)
        get(r, "acme")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    assert seen[0] == ("acme", "v1")


def test_signals_are_off_by_default_and_checked(clock: ManualClock) -> None:
    r = CohortRouter({"v1": timed_app(clock)}, domains=["example.com"])
    assert r.signals is None
    with pytest.raises(ConfigurationError, match="SignalsConfig"):
        CohortRouter({"v1": timed_app(clock)}, domains=["example.com"], signals="yes")  # type: ignore[arg-type]
    for bad in ({"slo": 0}, {"flush_interval": float("nan")}, {"cpu_sample": -1}, {"max_rows": 0}):
        with pytest.raises(ConfigurationError):
            SignalsConfig(**bad)


def test_a_router_over_a_sqlite_store_flushes_to_its_file(
    tmp_path: Any, clock: ManualClock
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    r = CohortRouter(
        {"v1": timed_app(clock, 0.1)}, domains=["example.com"], store=url, signals=True, clock=clock
    )
    get(r, "acme")
    r.close()  # writes what is counted
    sink = open_sink(url)
    assert [(row.tenant, row.requests) for row in sink.rows(0)] == [("acme", 1)]
    sink.close()


# --- ASGI -----------------------------------------------------------------------------------


def asgi_app(
    clock: ManualClock, status: int = 200, seconds: float = 0.0, fail: bool = False
) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        clock.advance(seconds)
        if fail:
            raise RuntimeError("broken mid-body")
        await send({"type": "http.response.body", "body": b"b"})
        clock.advance(5)  # after the final body message: not part of the request's time

    return app


def asgi_call(app: Any, host: bytes, kind: str = "http") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": kind,
        "headers": [(b"host", host)],
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "query_string": b"",
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_requests_are_timed_until_the_final_body_message(
    clock: ManualClock, sink: RecordingSink
) -> None:
    r = router({"v1": asgi_app(clock, seconds=0.03), "v2": timed_app(clock, 0.3)}, sink, clock)
    r.store.pin("beta", "v2")
    sent = asgi_call(r, b"acme.example.com")
    assert [m.get("more_body", False) for m in sent[1:]] == [True, False]
    asgi_call(r, b"beta.example.com")  # a WSGI version under the ASGI router
    asgi_call(r, b"acme.example.com", kind="websocket")  # passed through, not counted
    r.signals.flush()
    assert [(row.tenant, row.version, row.requests, row.histogram) for row in sink.rows(0)] == [
        ("acme", "v1", 1, hist(3)),
        ("beta", "v2", 1, hist(7)),
    ]


def test_an_asgi_exception_counts_as_5xx(clock: ManualClock, sink: RecordingSink) -> None:
    r = router({"v1": asgi_app(clock, fail=True)}, sink, clock)
    with pytest.raises(RuntimeError):
        asgi_call(r, b"acme.example.com")
    r.signals.flush()
    [row] = sink.rows(0)
    assert (row.status, row.exceptions) == ((0, 0, 0, 0, 1), 1)


def test_a_client_gone_during_the_last_asgi_body_is_counted_once_with_its_status(
    clock: ManualClock, sink: RecordingSink
) -> None:
    """The response was complete when the server failed to deliver its last body (the client
    went away): counted once, as the app's status, not as a 5xx of the version."""
    r = router({"v1": asgi_app(clock, status=404)}, sink, clock)

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                raise OSError("client disconnected")

        scope = {"type": "http", "headers": [(b"host", b"acme.example.com")], "path": "/"}
        await r(scope, receive, send)

    with pytest.raises(OSError):
        asyncio.run(call())
    r.signals.flush()
    [row] = sink.rows(0)
    assert (row.requests, row.status, row.exceptions) == (1, (0, 0, 0, 1, 0), 0)


def test_the_log_filter_sees_asgi_requests_of_a_router_built_before_it(
    clock: ManualClock, sink: RecordingSink
) -> None:
    """Under ASGI the context follows the request's task; a filter added after the router was
    built (as logging is often configured late) still sees the tenant and version."""
    seen: list[tuple[str, str]] = []
    logger = logging.getLogger("tests.asgi_app")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        logger.info("serving")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    r = router({"v1": app}, sink, clock)

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.tenant, record.version))  # type: ignore[attr-defined]

    handler = Keep()
    handler.addFilter(TenantLogFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        asgi_call(r, b"acme.example.com")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    assert seen == [("acme", "v1"), ("-", "-")]


def test_standalone_asgi_signals_read_the_proxy_header(
    clock: ManualClock, sink: RecordingSink
) -> None:
    app = Signals(
        asgi_app(clock, status=503),
        version="v3",
        store="memory://",
        config=SignalsConfig(sink=sink),
        clock=clock,
    )

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request"}

        async def send(message: Message) -> None:
            return None

        headers = [(b"host", b"x.example.com"), (b"x-cohortroute-tenant", b"acme")]
        await app({"type": "http", "headers": headers}, receive, send)

    asyncio.run(call())
    app.flush()
    [row] = sink.rows(0)
    assert (row.tenant, row.version, row.status) == ("acme", "v3", (0, 0, 0, 0, 1))


def test_a_sink_over_a_store_that_may_not_create_its_file_never_creates_it(
    tmp_path: Any,
) -> None:
    path = tmp_path / "missing.db"
    sink = open_sink(open_store(f"sqlite:///{path}", create=False))
    with pytest.raises(StoreUnavailableError, match=r"missing\.db"):
        sink.rows(0)
    assert not path.exists()

"""Reading a few tenants' rows from the Redis sink has the server pick their fields out of each
minute's hash (HSCAN ... MATCH) instead of sending every tenant's: `cohortroute ticket` for a
name the store has never seen read every field of every minute kept (7 s for 5 hours of 1,000
tenants; minutes for the default 14 days)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cohortroute.signals import SignalRow, open_sink
from cohortroute.store import open_store

pytest.register_assert_rewrite("tests.services")
pytest_plugins = ("tests.services",)

pytestmark = pytest.mark.redis


def _row(minute: int, tenant: str, version: str = "v1") -> SignalRow:
    return SignalRow(minute, tenant, version, 1, (0, 1, 0, 0, 0), histogram=(1,) + (0,) * 14)


@pytest.fixture
def sink(redis_url: str) -> Iterator[Any]:
    store = open_store(redis_url)
    sink = open_sink(store)
    try:
        yield sink
    finally:
        sink.close()
        store.close()


def _commands(sink: Any) -> list[str]:
    """Record the commands the sink's pipelines send from now on."""
    client = sink._conn()
    sent: list[str] = []
    make = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make(*args, **kwargs)
        execute = pipe.execute

        def recorded(*a: Any, **k: Any) -> Any:
            sent.extend(str(command[0][0]).upper() for command in pipe.command_stack)
            return execute(*a, **k)

        pipe.execute = recorded
        return pipe

    client.pipeline = pipeline
    return sent


def test_a_few_tenants_are_read_without_every_tenants_fields(sink: Any) -> None:
    names = [f"t{i}" for i in range(300)] + ["", "__other__", "a-b"]
    sink.add([_row(m, t, v) for m in (10, 11) for t in names for v in ("v1", "v2")])
    everything = sink.rows(0)
    sent = _commands(sink)
    for wanted in (["t7"], ["", "t7"], ["__other__"], ["a-b", "t1"], ["nobody"]):
        got = sink.rows(0, tenants=wanted)
        assert got == [r for r in everything if r.tenant in wanted], wanted
    assert sink.rows(11, 12, versions=["v2"], tenants=["t7"]) == [_row(11, "t7", "v2")]
    assert "HGETALL" not in sent and "HSCAN" in sent
    many = [f"t{i}" for i in range(50)]  # many tenants: one read of each minute is cheaper
    assert {r.tenant for r in sink.rows(0, tenants=many)} == set(many)

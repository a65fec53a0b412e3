"""What the admin console opens itself -- the signals sink, a store given as a URL -- is
opened once, reused by every page view, and closed by ``AdminApp.close()``."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import AdminApp, open_store
from cohortroute.admin import OPERATOR
from cohortroute.signals import SignalRow, Ticket
from cohortroute.store import Store

pytest.register_assert_rewrite("tests.services")
pytest_plugins = ("tests.services",)


class CountingSink:
    """An empty sink that counts how often it is closed."""

    def __init__(self) -> None:
        self.closed = 0

    def add(self, rows: Sequence[SignalRow]) -> None:
        pass

    def rows(self, since_minute: int, until_minute: int | None = None, **_: Any) -> list[Any]:
        return []

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        return []

    def close(self) -> None:
        self.closed += 1


def console(store: str | Store, **options: Any) -> AdminApp:
    return AdminApp(store, anonymous=OPERATOR, **options)


def signals_page(app: AdminApp) -> str:
    response = Client(app).get("/signals")
    assert response.status_code == 200
    return response.text


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[CountingSink]:
    """Every sink the console opens through ``open_sink``."""
    sinks: list[CountingSink] = []

    def open_sink(store: Store) -> CountingSink:
        sinks.append(CountingSink())
        return sinks[-1]

    monkeypatch.setattr("cohortroute.signals.open_sink", open_sink)
    return sinks


def test_the_signals_page_opens_one_sink_and_close_closes_it(opened: list[CountingSink]) -> None:
    app = console("memory://")
    for _ in range(3):
        assert "No signals in the last 60 minutes." in signals_page(app)
    assert len(opened) == 1 and opened[0].closed == 0
    app.close()
    app.close()  # idempotent
    assert opened[0].closed == 1
    signals_page(app)  # a later view opens a new one
    assert len(opened) == 2
    app.close()
    assert opened[1].closed == 1


def test_a_sink_given_by_the_caller_is_used_and_left_open(opened: list[CountingSink]) -> None:
    mine = CountingSink()
    app = console("memory://", signals=mine)
    signals_page(app)
    app.close()
    assert opened == [] and mine.closed == 0


def test_close_closes_a_store_given_as_a_url_but_not_a_store_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store("memory://")
    closes: list[str] = []
    monkeypatch.setattr(type(store), "close", lambda self: closes.append("closed"))
    console(store).close()
    assert closes == []
    owned = console("memory://")
    assert owned.store is not store
    owned.close()
    assert closes == ["closed"]


@pytest.mark.postgres
def test_a_postgresql_console_leaves_no_connection_open(postgres_url: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        app = console(postgres_url)
        app.store.register_versions(["v1", "v2"], "v1")
        app.store.start_rollout("v2", 10)
        for _ in range(2):
            assert "No signals in the last 60 minutes." in signals_page(app)
        app.close()
        del app
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []

"""The PostgreSQL signals sink closes every connection it opens: on close(), when dropped, and
when the first use fails before the connection was kept (against the real server)."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator

import pytest

from cohortroute.errors import StoreUnavailableError
from cohortroute.signals import SignalRow, open_sink

pytest.register_assert_rewrite("tests.services")
from tests.services import with_query  # noqa: E402

pytest_plugins = ("tests.services",)
pytestmark = pytest.mark.postgres

ROW = SignalRow(100, "acme", "v1", requests=1, status=(0, 1, 0, 0, 0))


@pytest.fixture
def unclosed() -> Iterator[Callable[[], list[str]]]:
    """The ResourceWarnings (a connection collected while open) raised until it is called."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)

        def collect() -> list[str]:
            gc.collect()
            return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]

        yield collect


def test_a_failed_first_use_closes_the_new_connection(
    postgres_url: str, unclosed: Callable[[], list[str]]
) -> None:
    # Every transaction read-only: the sink connects, then its CREATE statements are refused.
    read_only = with_query(postgres_url, options="-cdefault_transaction_read_only=on")
    sink = open_sink(read_only)
    with pytest.raises(StoreUnavailableError, match="read-only"):
        sink.add([ROW])
    with pytest.raises(StoreUnavailableError, match="read-only"):
        sink.rows(0)
    sink.close()
    del sink
    assert unclosed() == []


def test_a_sink_dropped_without_close_closes_its_connection(
    postgres_url: str, unclosed: Callable[[], list[str]]
) -> None:
    sink = open_sink(postgres_url)
    sink.add([ROW])
    assert sink.rows(0)[0].requests == 1
    del sink
    assert unclosed() == []


def test_close_is_idempotent_and_the_sink_reopens(
    postgres_url: str, unclosed: Callable[[], list[str]]
) -> None:
    sink = open_sink(postgres_url)
    sink.add([ROW])
    sink.close()
    sink.close()
    sink.add([ROW])  # reopens
    assert sink.rows(0)[0].requests == 2
    sink.close()
    del sink
    assert unclosed() == []

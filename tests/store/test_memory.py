"""The in-memory store passes the store contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cohortroute.errors import ConfigurationError
from cohortroute.store import MemoryStore, Store, open_store
from cohortroute.testing.contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        return lambda: open_store("memory://")

    def corrupt_policy(self, store: Store, text: str) -> None:
        assert isinstance(store, MemoryStore)
        store._policy = text


def test_each_memory_url_opens_an_independent_store() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    first.register_versions(["1.0"], default="1.0")
    assert isinstance(second, MemoryStore)
    assert second.revision() == 0


def test_memory_url_takes_no_location() -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        open_store("memory://somewhere")

"""The contract on concurrency within one process: threads, and random sequences of writes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ...store.base import Store
from ._base import V2, ContractBase, _increment, _ready
from .model import _Model, _model_steps, _perform

log = logging.getLogger(__name__)


class ConcurrencyContract(ContractBase):
    """Threads lose no write; random operation sequences match a reference model."""

    # --- concurrency ---------------------------------------------------------------------

    def test_threads_lose_no_write(self, store: Store) -> None:
        _ready(store)
        threads, writes = self.thread_count, self.thread_writes
        revisions: list[int] = []
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def work(index: int) -> None:
            try:
                start.wait(timeout=30)
                for i in range(writes):
                    revisions.append(store.pin(f"t{index}-{i}", V2, actor=f"thread-{index}"))
                    revisions.append(store.update_tenant("shared", "count", _increment))
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert errors == []
        total = 2 * threads * writes
        assert sorted(revisions) == list(range(2, 2 + total))
        assert store.revision() == 1 + total
        assert store.tenant("shared").state["count"] == threads * writes
        assert len(list(store.tenants())) == threads * writes + 1
        assert len(store.history(limit=total + 10)) == total + 4

    def test_random_sequences_match_a_model(self, store_factory: Callable[[], Store]) -> None:
        pytest.importorskip("hypothesis")
        from hypothesis import given, settings

        @settings(max_examples=self.model_examples, deadline=None)
        @given(steps=_model_steps(self.model_steps))
        def check(steps: list[tuple[Any, ...]]) -> None:
            store = store_factory()  # a fresh store per example, not the test's fixture
            try:
                model = _Model()
                for step in steps:
                    expected = model.apply(step)
                    if expected is None:
                        assert _perform(store, step) == model.revision, step
                    else:
                        with pytest.raises(expected):
                            _perform(store, step)
                    model.assert_matches(store)
                model.assert_history(store)
            finally:
                store.close()

        check()

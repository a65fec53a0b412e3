"""The store contract: the pytest suite every :class:`~cohortroute.store.Store` backend passes.

Our backends run it, and so can yours, with one class::

    import pytest
    from cohortroute.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self):
            made = []

            def make():
                store = MyStore(...)  # a fresh, EMPTY store
                made.append(store)
                return store

            yield make
            for store in made:
                store.close()  # and delete what the stores left behind

Fixtures a subclass provides:

``store_factory`` (required)
    A callable returning a fresh, empty store each time it is called. It may reuse one location
    and empty it: the suite never touches a store again once it asked for the next one. The
    fixture cleans up after itself. The suite derives the ``store`` fixture from it, and the
    Hypothesis model test calls it once per example, which is why the contract asks for a
    factory rather than a single store.

``store_url`` (:class:`SharedStoreContract` only)
    A URL naming a fresh, empty store that several processes share (``sqlite:////tmp/x.db``,
    ``redis://localhost/15``...). Worker processes open it with :func:`open_store`, after
    importing the module that defines the store class, so a custom scheme works there too.

One optional hook: ``corrupt_policy(self, store, text)`` stores ``text`` (valid JSON of the
wrong shape, such as ``[1]``) where the store keeps its policy, bypassing its checks; with it the
suite proves that garbage in the store surfaces as a :class:`~cohortroute.errors.StoreError`
naming the place, never as a bare ``AttributeError``. Without it those tests are skipped.

The suite is split by concern (``state``, ``rollout``, ``records``, ``audit``, ``concurrency``,
``processes``, ``model``); :class:`StoreContract` combines them.

Class attributes tune the cost: ``thread_count``/``thread_writes`` for the threaded test,
``model_examples``/``model_steps`` for the model test, ``process_count``/``process_writes`` for
the multi-process test. Hypothesis is imported only by the model test (skipped without it).
:func:`assert_processes_lose_no_write` is the multi-process check on its own, for a heavier run
in a backend's own tests (``processes=8, writes=1000``).
"""

from __future__ import annotations

import logging

import pytest

from ...store.base import open_store
from ._base import V2, _ready
from .audit import AuditContract
from .concurrency import ConcurrencyContract
from .processes import assert_processes_lose_no_write
from .records import RecordsContract
from .rollout import RolloutContract
from .state import StateContract

__all__ = ["SharedStoreContract", "StoreContract", "assert_processes_lose_no_write"]

log = logging.getLogger(__name__)


class StoreContract(
    StateContract, RolloutContract, RecordsContract, AuditContract, ConcurrencyContract
):
    """Behaviour every store shows a user: state, revisions, audit log, errors, concurrency."""


class SharedStoreContract(StoreContract):
    """The contract for stores several processes share: adds tests across processes.

    Needs a ``store_url`` fixture besides ``store_factory`` (see the module docstring).
    """

    process_count = 8
    process_writes = 200

    @pytest.fixture
    def store_url(self) -> str:
        pytest.fail(
            f"{type(self).__name__} needs a `store_url` fixture: a URL naming a fresh, empty "
            "store that other processes can open; see cohortroute.testing.contract",
            pytrace=False,
        )

    def test_two_handles_on_one_url_share_the_state(self, store_url: str) -> None:
        first, second = open_store(store_url), open_store(store_url)
        try:
            _ready(first)
            assert second.revision() == 1
            assert second.policy() == first.policy()
            second.pin("acme", V2, actor="second")
            assert first.revision() == 2
            assert first.tenant("acme").pin == V2
            assert first.history(limit=1)[0].actor == "second"
            assert [r.name for r in first.tenants()] == ["acme"]
        finally:
            first.close()
            second.close()

    def test_processes_lose_no_write(self, store_url: str) -> None:
        assert_processes_lose_no_write(
            store_url, processes=self.process_count, writes=self.process_writes
        )

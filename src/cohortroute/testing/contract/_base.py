"""What every part of the store contract shares: the test versions, helpers and fixtures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from ...policy import Policy, TenantRecord
from ...store.base import Store

log = logging.getLogger(__name__)

V1, V2, V3 = "1.0", "2.0", "3.0"
VERSIONS = (V1, V2, V3)


def _ready(store: Store) -> int:
    """Register the three test versions with V1 as the default; revision 1 on an empty store."""
    return store.register_versions(VERSIONS, default=V1)


def _halt(policy: Policy) -> Policy:
    if policy.rollout is None or policy.rollout.halted:
        return policy
    return replace(policy, rollout=replace(policy.rollout, halted=True))


def _drop_rollout(policy: Policy) -> Policy:
    return replace(policy, rollout=None)


def _increment(record: TenantRecord, policy: Policy) -> TenantRecord:
    """Add one to the record's ``count``: a read-modify-write that must never lose an update."""
    return replace(record, state={**record.state, "count": record.state.get("count", 0) + 1})


class ContractBase:
    """The fixtures and tuning knobs of the contract; the test mixins build on it."""

    """Behaviour every store shows a user: state, revisions, audit log, errors, concurrency."""

    thread_count = 8
    thread_writes = 25
    model_examples = 50
    model_steps = 25

    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        pytest.fail(
            f"{type(self).__name__} needs a `store_factory` fixture returning a fresh, empty "
            "store on each call; see cohortroute.testing.contract",
            pytrace=False,
        )

    @pytest.fixture
    def store(self, store_factory: Callable[[], Store]) -> Iterator[Store]:
        store = store_factory()
        yield store
        store.close()

    def corrupt_policy(self, store: Store, text: str) -> None:
        """Store ``text`` where ``store`` keeps the policy, bypassing the store's checks.

        Backends override it to prove that garbage in the store surfaces as a StoreError; the
        tests that need it are skipped otherwise.
        """
        pytest.skip(f"{type(self).__name__} does not define corrupt_policy(store, text)")

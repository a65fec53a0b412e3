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

Class attributes tune the cost: ``thread_count``/``thread_writes`` for the threaded test,
``model_examples``/``model_steps`` for the model test, ``process_count``/``process_writes`` for
the multi-process test. Hypothesis is imported only by the model test (skipped without it).
:func:`assert_processes_lose_no_write` is the multi-process check on its own, for a heavier run
in a backend's own tests (``processes=8, writes=1000``).
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import queue
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from ..errors import (
    CohortRouteError,
    ConflictError,
    UnknownVersionError,
    ValidationError,
)
from ..policy import Policy, TenantRecord, parse_percent
from ..store.base import Store, default_actor, open_store

__all__ = ["SharedStoreContract", "StoreContract", "assert_processes_lose_no_write"]

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


class StoreContract:
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

    # --- the empty store and versions ----------------------------------------------------

    def test_empty_store_has_revision_zero_and_no_state(self, store: Store) -> None:
        assert store.revision() == 0
        assert store.policy() == Policy()
        assert store.tenant("acme") == TenantRecord("acme")
        assert list(store.tenants()) == []
        assert store.history() == []
        store.check()

    def test_register_versions_sets_the_default_only_once(self, store: Store) -> None:
        assert store.register_versions([V1, V2], default=V1) == 1
        policy = store.policy()
        assert policy.versions == frozenset({V1, V2})
        assert (policy.default, policy.revision) == (V1, 1)
        assert [(e.action, e.after) for e in reversed(store.history())] == [
            ("register-version", V1),
            ("register-version", V2),
            ("set-default", V1),
        ]
        # A default not in the list is registered too; an existing default is kept.
        assert store.register_versions([V2], default=V3) == 2
        assert store.policy().versions == {V1, V2, V3}
        assert store.policy().default == V1
        assert store.register_versions([V1, V2, V3], default=V2) == 2  # nothing new

    def test_every_write_bumps_the_revision_by_exactly_one(self, store: Store) -> None:
        writes: list[Callable[[], int]] = [
            lambda: _ready(store),
            lambda: store.pin("acme", V2),
            lambda: store.tag("acme", "beta"),
            lambda: store.set_rule("beta", V3),
            lambda: store.start_rollout(V2, 5, salt="s"),
            lambda: store.set_percent(10),
            lambda: store.set_default(V3),
            lambda: store.untag("acme", "beta"),
            lambda: store.remove_rule("beta"),
            lambda: store.unpin("acme"),
        ]
        for expected, write in enumerate(writes, start=1):
            assert write() == expected
            assert store.revision() == expected
            assert store.policy().revision == expected
            assert store.history(limit=1)[0].revision == expected

    def test_no_op_writes_bump_nothing_and_log_nothing(self, store: Store) -> None:
        _ready(store)
        store.pin("acme", V2)
        store.tag("acme", "beta")
        store.set_rule("beta", V2)
        store.start_rollout(V3, 5, salt="s")
        revision, logged = store.revision(), len(store.history(limit=1000))
        no_ops: list[Callable[[], int]] = [
            lambda: store.pin("acme", V2),
            lambda: store.pin("ACME", V2),
            lambda: store.unpin("zeta"),
            lambda: store.tag("acme", "beta"),
            lambda: store.untag("acme", "missing"),
            lambda: store.untag("zeta", "beta"),
            lambda: store.set_rule("beta", V2),
            lambda: store.remove_rule("missing"),
            lambda: store.set_default(V1),
            lambda: store.set_percent(5),
            lambda: store.register_versions([V1, V2], default=V3),
            lambda: store.update_rollout("halt", lambda p: p),
            lambda: store.update_tenant("acme", "noop", lambda r, p: r),
        ]
        for no_op in no_ops:
            assert no_op() == revision
        assert store.revision() == revision
        assert len(store.history(limit=1000)) == logged
        assert store.tenant("zeta") == TenantRecord("zeta")

    # --- the state operations ------------------------------------------------------------

    def test_pin_and_unpin(self, store: Store) -> None:
        _ready(store)
        assert store.pin("Acme", V2) == 2
        assert store.tenant("acme") == TenantRecord("acme", pin=V2)
        assert store.pin("acme", V3) == 3
        assert store.tenant("acme").pin == V3
        assert store.unpin("ACME") == 4
        assert store.tenant("acme") == TenantRecord("acme")

    def test_tag_and_untag(self, store: Store) -> None:
        _ready(store)
        store.tag("acme", "Beta")
        store.tag("acme", "internal")
        assert store.tenant("acme").tags == {"beta", "internal"}
        store.untag("acme", "BETA")
        assert store.tenant("acme").tags == {"internal"}
        assert store.revision() == 4

    def test_rules_keep_their_order(self, store: Store) -> None:
        _ready(store)
        store.set_rule("paid", V2)
        store.set_rule("internal", V3)
        store.set_rule("beta", V2)
        store.set_rule("paid", V3)  # an existing rule keeps its place
        assert store.policy().rules == (("paid", V3), ("internal", V3), ("beta", V2))
        store.remove_rule("internal")
        assert store.policy().rules == (("paid", V3), ("beta", V2))
        assert store.policy().rule_for(frozenset({"beta", "paid"})) == ("paid", V3)

    def test_set_default(self, store: Store) -> None:
        _ready(store)
        assert store.set_default(V2) == 2
        assert store.policy().default == V2
        entry = store.history(limit=1)[0]
        assert (entry.action, entry.before, entry.after) == ("set-default", V1, V2)

    def test_unknown_version_is_refused_and_nothing_written(self, store: Store) -> None:
        _ready(store)
        store.pin("acme", V2)
        refused: list[Callable[[], int]] = [
            lambda: store.pin("acme", "9.9"),
            lambda: store.pin("zeta", "9.9"),
            lambda: store.set_rule("beta", "9.9"),
            lambda: store.set_default("9.9"),
            lambda: store.start_rollout("9.9", 5),
        ]
        for call in refused:
            with pytest.raises(UnknownVersionError) as info:
                call()
            assert info.value.version == "9.9"
            assert info.value.known == [V1, V2, V3]
            assert all(v in str(info.value) for v in VERSIONS)
        assert store.revision() == 2
        assert len(store.history(limit=1000)) == 5
        assert store.tenant("acme").pin == V2
        assert store.tenant("zeta") == TenantRecord("zeta")
        assert store.policy().rules == ()
        assert store.policy().rollout is None

    def test_invalid_input_is_refused_and_nothing_written(self, store: Store) -> None:
        _ready(store)
        refused: list[Callable[[], int]] = [
            lambda: store.pin("bad_tenant", V2),
            lambda: store.pin("", V2),
            lambda: store.pin("-acme", V2),
            lambda: store.pin("a" * 64, V2),
            lambda: store.unpin("acme.example.com"),
            lambda: store.tag("acme", "not a tag"),
            lambda: store.tag("acme", ""),
            lambda: store.untag("acme", "beta!"),
            lambda: store.set_rule("-", V2),
            lambda: store.remove_rule("bad tag"),
            lambda: store.register_versions(["bad version"]),
            lambda: store.start_rollout(V2, 101),
            lambda: store.start_rollout(V2, "abc"),
            lambda: store.start_rollout(V2, "0.001"),
            lambda: store.start_rollout(V2, -1),
            lambda: store.start_rollout(V2, plan=[5, 1]),
            lambda: store.start_rollout(V2, 5, every=-1),
            lambda: store.update_tenant("bad_tenant", "x", lambda r, p: r),
        ]
        for call in refused:
            with pytest.raises(ValidationError):
                call()
        store.start_rollout(V2, 5, salt="s")
        for percent in (101, "x", "5.555", -3):
            with pytest.raises(ValidationError):
                store.set_percent(percent)
        assert store.revision() == 2
        rollout = store.policy().rollout
        assert rollout is not None and rollout.percent == 500
        assert list(store.tenants()) == []

    def test_errors_are_cohortroute_errors(self, store: Store) -> None:
        refused: list[Callable[[], int]] = [
            lambda: store.pin("acme", V1),  # no version known yet
            lambda: store.set_percent(5),  # no rollout
            lambda: store.tag("bad_tenant", "beta"),
        ]
        for call in refused:
            with pytest.raises(CohortRouteError):
                call()
        assert store.revision() == 0

    # --- the rollout ---------------------------------------------------------------------

    def test_rollout_start_and_set_percent(self, store: Store) -> None:
        _ready(store)
        before = time.time()
        assert store.start_rollout(V2, "5%", salt="salt-1") == 2
        rollout = store.policy().rollout
        assert rollout is not None
        assert (rollout.candidate, rollout.percent, rollout.salt) == (V2, 500, "salt-1")
        assert (rollout.plan, rollout.step, rollout.halted) == ((), -1, False)
        assert before - 1 <= rollout.started_at <= time.time() + 1
        assert store.set_percent("12.25") == 3
        after = store.policy().rollout
        assert after is not None
        assert after == replace(rollout, percent=1225, step_started_at=after.step_started_at)
        entry = store.history(limit=1)[0]
        assert (entry.action, entry.before, entry.after) == ("rollout-set", 500, 1225)

    def test_each_rollout_gets_a_fresh_salt(self, store: Store) -> None:
        _ready(store)
        store.start_rollout(V2, 5)
        first = store.policy().rollout
        store.update_rollout("rollback", _drop_rollout)
        store.start_rollout(V2, 5)
        second = store.policy().rollout
        assert first is not None and second is not None and first.salt != second.salt

    def test_rollout_plan(self, store: Store) -> None:
        _ready(store)
        store.start_rollout(V2, plan=[1, 5, "25%", 100], every=60)
        rollout = store.policy().rollout
        assert rollout is not None
        assert (rollout.plan, rollout.percent, rollout.step, rollout.every) == (
            (100, 500, 2500, 10000),
            100,
            0,
            60.0,
        )
        store.set_percent(25)
        rollout = store.policy().rollout
        assert rollout is not None and (rollout.percent, rollout.step) == (2500, 2)

    def test_rollout_conflicts(self, store: Store) -> None:
        _ready(store)
        with pytest.raises(ConflictError, match="no rollout"):
            store.set_percent(5)
        with pytest.raises(ConflictError):
            store.start_rollout(V1, 5)  # already the default
        store.start_rollout(V2, 5, salt="s")
        with pytest.raises(ConflictError, match="already running"):
            store.start_rollout(V3, 5)
        with pytest.raises(ConflictError, match="already running"):
            store.start_rollout(V2, 10)
        assert store.revision() == 2
        rollout = store.policy().rollout
        assert rollout is not None and (rollout.candidate, rollout.percent) == (V2, 500)

    def test_update_rollout(self, store: Store) -> None:
        _ready(store)
        store.start_rollout(V2, 5, salt="s")
        assert store.update_rollout("halt", _halt, actor="guard") == 3
        rollout = store.policy().rollout
        assert rollout is not None and rollout.halted
        entry = store.history(limit=1)[0]
        assert (entry.action, entry.actor) == ("halt", "guard")
        assert entry.before["halted"] is False and entry.after["halted"] is True
        assert store.update_rollout("halt", _halt) == 3  # already halted: no-op
        assert store.update_rollout("finalize", lambda p: replace(p, rollout=None, default=V2))
        assert (store.policy().rollout, store.policy().default) == (None, V2)
        entry = store.history(limit=1)[0]
        assert (entry.action, entry.after) == ("finalize", None)

    # --- tenant records ------------------------------------------------------------------

    def test_update_tenant_keeps_ratchet_and_state(self, store: Store) -> None:
        _ready(store)
        revision = store.update_tenant(
            "acme", "migrate", lambda r, p: replace(r, ratchet=V2, state={"migration": "done"})
        )
        assert revision == 2
        assert store.tenant("acme") == TenantRecord("acme", ratchet=V2, state={"migration": "done"})
        entry = store.history(limit=1)[0]
        assert (entry.action, entry.tenant) == ("migrate", "acme")
        assert entry.before == {"pin": None, "tags": [], "ratchet": None, "state": {}}
        assert entry.after == {
            "pin": None,
            "tags": [],
            "ratchet": V2,
            "state": {"migration": "done"},
        }
        # The update sees the policy of the same transaction.
        store.update_tenant("acme", "follow", lambda r, p: replace(r, ratchet=p.default))
        assert store.tenant("acme").ratchet == V1

    def test_update_tenants_writes_one_revision_per_batch(self, store: Store) -> None:
        _ready(store)
        names = ["t1", "t2", "t3", "t4", "t5"]
        revision = store.update_tenants(
            names, "mark", lambda r, p: replace(r, ratchet=V2), batch_size=2
        )
        assert revision == 4  # three batches of at most two tenants
        assert all(store.tenant(n).ratchet == V2 for n in names)
        assert [e.tenant for e in store.history(limit=5)] == list(reversed(names))
        # Tenants already in the wanted state write nothing at all.
        assert store.update_tenants(names, "mark", lambda r, p: replace(r, ratchet=V2)) == 4
        assert store.revision() == 4

    def test_register_tenants_is_idempotent_and_merges_tags(self, store: Store) -> None:
        _ready(store)
        assert store.register_tenants(["acme", "globex"], tags={"acme": ["beta"]}) == 2
        revision = store.revision()
        assert store.tenant("acme").registered and store.tenant("acme").tags == {"beta"}
        assert store.register_tenants(["acme", "globex"]) == 0
        assert store.revision() == revision  # nothing new: no write
        assert store.register_tenants(["acme"], tags={"acme": ["paid"]}) == 0
        assert store.tenant("acme").tags == {"beta", "paid"}
        assert [r.name for r in store.tenants()] == ["acme", "globex"]

    def test_update_policy_audits_every_tenant_it_moves(self, store: Store) -> None:
        _ready(store)
        store.start_rollout(V2, 0, salt="s")

        def to_50(policy: Policy) -> Policy:
            assert policy.rollout is not None
            return replace(policy, rollout=replace(policy.rollout, percent=5000))

        store.update_policy("rollout-set", to_50, moves=lambda b, a: [("acme", V1, V2)])
        assert store.policy().rollout.percent == 5000  # type: ignore[union-attr]
        assert store.tenant("acme") == TenantRecord("acme")  # moved in history, not in record
        (entry,) = store.history("acme")
        assert (entry.action, entry.before, entry.after) == ("rollout-set", V1, V2)

    def test_state_round_trips(self, store: Store) -> None:
        state: dict[str, Any] = {
            "migration": {"from": V1, "to": V2, "steps": [1, 2, 3], "done": False},
            "lease": {"owner": "worker-7", "until": 1767225600.25},
            "unicode": "caf\u00e9 \u2603 \U0001f680",
            "empty": {},
            "none": None,
            "big": 2**53,
            "negative": -0.5,
        }
        store.update_tenant("acme", "state", lambda r, p: replace(r, state=state))
        assert store.tenant("acme").state == state
        assert [r.state for r in store.tenants()] == [state]
        assert store.history(limit=1)[0].after["state"] == state

    def test_tenants_lists_records_in_name_order_and_drops_emptied_ones(self, store: Store) -> None:
        _ready(store)
        store.pin("zeta", V2)
        store.tag("acme", "beta")
        store.update_tenant("mid", "ratchet", lambda r, p: replace(r, ratchet=V3))
        store.update_tenant("b-2", "state", lambda r, p: replace(r, state={"k": 1}))
        assert [r.name for r in store.tenants()] == ["acme", "b-2", "mid", "zeta"]
        assert next(iter(store.tenants())) == TenantRecord("acme", tags=frozenset({"beta"}))
        store.unpin("zeta")
        store.untag("acme", "beta")
        store.update_tenant("b-2", "state", lambda r, p: replace(r, state={}))
        assert [r.name for r in store.tenants()] == ["mid"]
        assert store.tenant("zeta") == TenantRecord("zeta")

    def test_tenants_orders_many_records_by_name(self, store: Store) -> None:
        _ready(store)
        names = [f"t{i}" for i in range(40)]
        for name in reversed(names):
            store.pin(name, V2)
        assert [r.name for r in store.tenants()] == sorted(names)

    # --- the audit log -------------------------------------------------------------------

    def test_history_is_newest_first_and_filters_by_tenant(self, store: Store) -> None:
        _ready(store)
        store.pin("acme", V2)
        store.tag("zeta", "beta")
        store.pin("acme", V3)
        store.set_rule("beta", V2)
        assert [e.revision for e in store.history()] == [5, 4, 3, 2, 1, 1, 1, 1]
        assert [(e.action, e.after) for e in store.history(tenant="acme")] == [
            ("pin", V3),
            ("pin", V2),
        ]
        assert store.history(tenant="nobody") == []
        assert [e.revision for e in store.history(limit=2)] == [5, 4]
        assert [e.revision for e in store.history(tenant="acme", limit=1)] == [4]

    def test_history_records_the_actor_and_the_time(self, store: Store) -> None:
        before = time.time()
        _ready(store)
        store.pin("acme", V2, actor="alice")
        entries = store.history()
        assert entries[0].actor == "alice"
        assert {e.actor for e in entries[1:]} == {default_actor()}
        assert all(before - 1 <= e.at <= time.time() + 1 for e in entries)

    def test_history_records_before_and_after(self, store: Store) -> None:
        _ready(store)
        store.pin("acme", V2)
        store.pin("acme", V3)
        store.tag("acme", "beta")
        store.set_rule("beta", V2)
        store.set_rule("beta", V3)
        store.remove_rule("beta")
        store.unpin("acme")
        got = [(e.action, e.tenant, e.before, e.after) for e in store.history(limit=7)]
        assert got == [
            ("unpin", "acme", V3, None),
            ("remove-rule", None, "beta -> 3.0", None),
            ("rule", None, "beta -> 2.0", "beta -> 3.0"),
            ("rule", None, None, "beta -> 2.0"),
            ("tag", "acme", [], ["beta"]),
            ("pin", "acme", V2, V3),
            ("pin", "acme", None, V2),
        ]

    # --- life cycle and notification -----------------------------------------------------

    def test_subscribers_hear_local_writes(self, store: Store) -> None:
        heard: list[int] = []

        def listener() -> None:
            heard.append(1)

        store.subscribe(listener)
        _ready(store)
        store.pin("acme", V2)
        assert len(heard) >= 2

    def test_close_then_use_again(self, store: Store) -> None:
        _ready(store)
        store.close()
        assert store.revision() == 1
        store.pin("acme", V2)
        store.close()
        store.close()
        assert store.tenant("acme").pin == V2

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


# --- many processes --------------------------------------------------------------------------


def _writer(
    url: str, module: str, index: int, writes: int, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a spawned process
    """One writer process: open the store, then alternate a pin and a shared increment."""
    try:
        importlib.import_module(module)
        start.wait(timeout=60)
        store = open_store(url)  # after the barrier: creating a new store races too
        actor = f"writer-{index}"
        try:
            store.register_versions([V1, V2], default=V1, actor=actor)
            revisions = []
            for i in range(writes):
                if i % 2:
                    revision = store.update_tenant("shared", "count", _increment, actor=actor)
                else:
                    revision = store.pin(f"w{index}-{i}", V2, actor=actor)
                revisions.append(revision)
        finally:
            store.close()
        results.put((index, revisions, ""))
    except BaseException:
        results.put((index, [], traceback.format_exc()))


def assert_processes_lose_no_write(
    url: str,
    *,
    processes: int = 8,
    writes: int = 200,
    module: str | None = None,
    timeout: float = 300.0,
) -> None:
    """Let ``processes`` spawned processes write ``writes`` times each to the store at ``url``.

    Checks that no error reached a writer, no write was lost (a shared counter incremented by
    read-modify-write ends exact), every write got its own revision, each writer saw its
    revisions strictly increase, and the audit log holds one entry per write. ``url`` must name
    an empty store. ``module`` is the module defining the store class; without it the store is
    opened here first to find it, which also creates it before the writers start.
    """
    observer: Store | None = None
    if module is None:
        observer = open_store(url)
        module = type(observer).__module__
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_writer, args=(url, module, i, writes, start, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes: dict[int, tuple[list[int], str]] = {}
    seen: list[int] = []
    try:
        deadline = time.monotonic() + timeout
        while len(outcomes) < processes and time.monotonic() < deadline:
            if observer is not None:
                seen.append(observer.revision())  # reads never fail or go back while others write
            try:
                index, revisions, error = results.get(timeout=0.05)
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    break
                continue
            outcomes[index] = (revisions, error)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
            worker.close()
        results.close()
        results.join_thread()
        if observer is not None:
            observer.close()

    errors = [f"writer {i}: {error}" for i, (_, error) in sorted(outcomes.items()) if error]
    assert not errors, "\n".join(errors)
    assert len(outcomes) == processes, f"only {len(outcomes)} of {processes} writers reported"
    assert seen == sorted(seen), "the revision went backwards while processes wrote"
    for index, (revisions, _) in outcomes.items():
        assert all(a < b for a, b in itertools.pairwise(revisions)), f"writer {index} went back"
    total = processes * writes
    everything = sorted(r for revisions, _ in outcomes.values() for r in revisions)
    assert everything == list(range(2, 2 + total)), "a revision was lost or given twice"

    store = open_store(url)
    try:
        assert store.revision() == 1 + total
        assert store.tenant("shared").state.get("count", 0) == processes * (writes // 2)
        pinned = [r for r in store.tenants() if r.pin == V2]
        assert len(pinned) == processes * ((writes + 1) // 2)
        entries = store.history(limit=total + 10)
        assert len(entries) == total + 3
        by_actor = Counter(e.actor for e in entries if e.revision > 1)
        assert by_actor == {f"writer-{i}": writes for i in range(processes)}
    finally:
        store.close()


# --- the model test --------------------------------------------------------------------------

_TENANTS = ("acme", "Beta-Co", "zeta", "a1")
_TAGS = ("beta", "Internal", "paid")
_KNOWN = (V1, V2, V3)


def _model_steps(max_steps: int) -> Any:
    """A Hypothesis strategy for sequences of store operations (imported lazily)."""
    from hypothesis import strategies as st

    any_version = st.sampled_from((*_KNOWN, "9.9"))  # 9.9 is never registered
    tenant = st.sampled_from(_TENANTS)
    tag = st.sampled_from(_TAGS)
    percent = st.one_of(st.integers(0, 100), st.sampled_from(("0.5", "12.25%", "100")))
    text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    value = st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )
    state = st.dictionaries(text, value, max_size=3)
    step = st.one_of(
        st.tuples(
            st.just("register"),
            st.lists(st.sampled_from(_KNOWN), min_size=1, unique=True).map(tuple),
            st.one_of(st.none(), st.sampled_from(_KNOWN)),
        ),
        st.tuples(st.just("default"), any_version),
        st.tuples(st.just("pin"), tenant, any_version),
        st.tuples(st.just("unpin"), tenant),
        st.tuples(st.just("tag"), tenant, tag),
        st.tuples(st.just("untag"), tenant, tag),
        st.tuples(st.just("rule"), tag, any_version),
        st.tuples(st.just("unrule"), tag),
        st.tuples(st.just("start"), any_version, percent),
        st.tuples(st.just("percent"), percent),
        st.tuples(st.just("halt")),
        st.tuples(st.just("rollback")),
        st.tuples(st.just("state"), tenant, state),
        st.tuples(st.just("ratchet"), tenant, st.one_of(st.none(), st.sampled_from(_KNOWN))),
    )
    # Most sequences start from registered versions, so they reach the interesting states.
    start = st.sampled_from([[("register", _KNOWN, V1)], [("register", _KNOWN, V1)], []])
    return st.builds(list.__add__, start, st.lists(step, max_size=max_steps))


def _perform(store: Store, step: tuple[Any, ...]) -> int:
    """Apply one model step to a store through its public API."""
    kind, *args = step
    if kind == "register":
        return store.register_versions(args[0], default=args[1])
    if kind == "default":
        return store.set_default(args[0])
    if kind == "pin":
        return store.pin(args[0], args[1])
    if kind == "unpin":
        return store.unpin(args[0])
    if kind == "tag":
        return store.tag(args[0], args[1])
    if kind == "untag":
        return store.untag(args[0], args[1])
    if kind == "rule":
        return store.set_rule(args[0], args[1])
    if kind == "unrule":
        return store.remove_rule(args[0])
    if kind == "start":
        return store.start_rollout(args[0], args[1], salt=f"salt-{args[0]}")
    if kind == "percent":
        return store.set_percent(args[0])
    if kind == "halt":
        return store.update_rollout("halt", _halt)
    if kind == "rollback":
        return store.update_rollout("rollback", _drop_rollout)
    if kind == "state":
        state = args[1]
        return store.update_tenant(args[0], "state", lambda r, p: replace(r, state=state))
    if kind == "ratchet":
        version = args[1]
        return store.update_tenant(args[0], "ratchet", lambda r, p: replace(r, ratchet=version))
    raise AssertionError(f"unknown step {step!r}")


class _Model:
    """The store's documented behaviour in plain Python: what each operation should leave."""

    def __init__(self) -> None:
        self.revision = 0
        self.versions: set[str] = set()
        self.default: str | None = None
        self.rules: dict[str, str] = {}
        self.rollout: dict[str, Any] | None = None
        self.tenants: dict[str, dict[str, Any]] = {}
        self.audit: list[tuple[str, str | None]] = []

    def _record(self, name: str) -> dict[str, Any]:
        return self.tenants.setdefault(
            name, {"pin": None, "tags": set(), "ratchet": None, "state": {}}
        )

    def apply(self, step: tuple[Any, ...]) -> type[Exception] | None:
        """Apply a step; return the exception the store must raise, or None."""
        kind, *args = step
        logged: list[tuple[str, str | None]] = []
        version_at = {"default": 0, "pin": 1, "rule": 1, "start": 0}.get(kind)
        if version_at is not None and args[version_at] not in self.versions:
            return UnknownVersionError
        if kind == "register":
            names, default = list(args[0]), args[1]
            if default is not None and default not in names:
                names.append(default)
            for v in names:
                if v not in self.versions:
                    self.versions.add(v)
                    logged.append(("register-version", None))
            if self.default is None and default is not None:
                self.default = default
                logged.append(("set-default", None))
        elif kind == "default":
            if self.default != args[0]:
                self.default = args[0]
                logged.append(("set-default", None))
        elif kind in ("pin", "unpin", "tag", "untag", "state", "ratchet"):
            name = args[0].lower()
            record = self._record(name)
            field = {"unpin": "pin", "tag": "tags", "untag": "tags"}.get(kind, kind)
            if kind == "tag":
                value = record["tags"] | {args[1].lower()}
            elif kind == "untag":
                value = record["tags"] - {args[1].lower()}
            else:
                value = None if kind == "unpin" else args[1]
            if record[field] != value:
                record[field] = value
                logged.append((kind, name))
            if not (record["pin"] or record["tags"] or record["ratchet"] or record["state"]):
                del self.tenants[name]
        elif kind == "rule":
            tag = args[0].lower()
            if self.rules.get(tag) != args[1]:
                self.rules[tag] = args[1]
                logged.append(("rule", None))
        elif kind == "unrule":
            if self.rules.pop(args[0].lower(), None) is not None:
                logged.append(("remove-rule", None))
        elif kind == "start":
            if self.rollout is not None or args[0] == self.default:
                return ConflictError
            self.rollout = {
                "candidate": args[0],
                "percent": parse_percent(args[1]),
                "salt": f"salt-{args[0]}",
                "halted": False,
            }
            logged.append(("rollout-start", None))
        elif kind == "percent":
            points = parse_percent(args[0])
            if self.rollout is None:
                return ConflictError
            if self.rollout["percent"] != points:
                self.rollout["percent"] = points
                logged.append(("rollout-set", None))
        elif kind == "halt":
            if self.rollout is not None and not self.rollout["halted"]:
                self.rollout["halted"] = True
                logged.append(("halt", None))
        elif kind == "rollback" and self.rollout is not None:
            self.rollout = None
            logged.append(("rollback", None))
        if logged:
            self.revision += 1
            self.audit.extend(logged)
        return None

    def assert_matches(self, store: Store) -> None:
        """The store holds exactly the model's state, and reads it back the same way."""
        assert store.revision() == self.revision
        policy = store.policy()
        assert policy.revision == self.revision
        assert policy.versions == frozenset(self.versions)
        assert policy.default == self.default
        assert policy.rules == tuple(self.rules.items())
        if self.rollout is None:
            assert policy.rollout is None
        else:
            rollout = policy.rollout
            assert rollout is not None
            got = {
                "candidate": rollout.candidate,
                "percent": rollout.percent,
                "salt": rollout.salt,
                "halted": rollout.halted,
            }
            assert got == self.rollout
        expected = [self.expected_record(name) for name in sorted(self.tenants)]
        assert list(store.tenants()) == expected
        for name in _TENANTS:
            assert store.tenant(name.lower()) == self.expected_record(name.lower())

    def expected_record(self, name: str) -> TenantRecord:
        record = self.tenants.get(name)
        if record is None:
            return TenantRecord(name)
        return TenantRecord(
            name,
            pin=record["pin"],
            tags=frozenset(record["tags"]),
            ratchet=record["ratchet"],
            state=record["state"],
        )

    def assert_history(self, store: Store) -> None:
        """The audit log holds one entry per change, in order, under the right revisions."""
        entries = list(reversed(store.history(limit=len(self.audit) + 10)))
        assert [(e.action, e.tenant) for e in entries] == self.audit
        revisions = [e.revision for e in entries]
        assert revisions == sorted(revisions)
        assert (revisions[-1] if revisions else 0) == self.revision

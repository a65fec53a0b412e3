"""The contract on state: the empty store, versions, pins, tags, rules and refused input."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from ...errors import (
    CohortRouteError,
    StoreError,
    UnknownVersionError,
    ValidationError,
)
from ...policy import Policy, TenantRecord
from ...store.base import Store
from ._base import V1, V2, V3, VERSIONS, ContractBase, _ready

log = logging.getLogger(__name__)


class StateContract(ContractBase):
    """Versions, the default, pins, tags and tag rules; what is refused writes nothing."""

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

    @pytest.mark.parametrize(
        "text", ["[1]", "5", '"policy"', '{"rules": 5}']
    )  # valid JSON, wrong shape
    def test_a_corrupt_policy_raises_store_error(self, store: Store, text: str) -> None:
        _ready(store)
        self.corrupt_policy(store, text)
        with pytest.raises(StoreError, match="unreadable data") as info:
            store.policy()
        assert "restore" in str(info.value) or "prefix" in str(info.value)
        with pytest.raises(StoreError, match="unreadable data"):
            store.pin("acme", V1)
        assert store.revision() == 1

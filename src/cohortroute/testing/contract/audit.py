"""The contract on the audit log, change notification and the store's life cycle."""

from __future__ import annotations

import logging
import time

from ...store.base import Store, default_actor
from ._base import V2, V3, ContractBase, _ready

log = logging.getLogger(__name__)


class AuditContract(ContractBase):
    """Every write is audited (who, when, before, after); subscribers hear local writes."""

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

"""The contract on tenant records: updates, batches, registration, round trips, listing."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ...policy import Policy, TenantRecord
from ...store.base import Store
from ._base import V1, V2, V3, ContractBase, _ready

log = logging.getLogger(__name__)


class RecordsContract(ContractBase):
    """Tenant records keep what is written to them, in name order, batch by batch."""

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

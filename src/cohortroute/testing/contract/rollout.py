"""The contract on the rollout: start, percent, plans, salts, conflicts and policy updates."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from ...bucketing import bucket
from ...decision import decide
from ...errors import ConflictError
from ...store.base import Store
from ._base import V1, V2, V3, ContractBase, _drop_rollout, _halt, _ready

log = logging.getLogger(__name__)


class RolloutContract(ContractBase):
    """One rollout at a time, its percent, plan and salt, and atomic policy updates."""

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

    def test_lowering_the_percent_keeps_tenants_on_the_candidate(self, store: Store) -> None:
        # The ratchet: set_percent lowers the way the rollout controller does, so a registered
        # tenant the rollout already serves the candidate never bounces back.
        _ready(store)
        names = [f"t{i}" for i in range(200)]
        store.register_tenants(names)
        store.start_rollout(V2, 50, salt="lower")
        on_candidate = {n for n in names if bucket("lower", n) < 5000}
        store.set_percent(5)
        rollout = store.policy().rollout
        assert rollout is not None and rollout.percent == 500
        policy = store.policy()
        served = {r.name for r in store.tenants() if decide(policy, r, V1).version == V2}
        assert served == on_candidate
        marked = {r.name for r in store.tenants() if r.ratchet == V2}
        assert marked == {n for n in on_candidate if bucket("lower", n) >= 500}
        assert store.history(limit=1)[0].action == "rollout-set"

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

"""What the rollout verbs tell the operator is true: ratchet counts, preview, rollback, explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cohortroute import ConflictError
from cohortroute.bucketing import bucket
from cohortroute.decision import decide
from cohortroute.rollout import RolloutController
from cohortroute.store import MemoryStore, Store, open_store

from .cli_inproc import cli

TENANTS = [f"t{i:03d}" for i in range(200)]


@pytest.fixture
def store() -> Store:
    s = MemoryStore()
    s.register_versions(["v1", "v2"], "v1")
    return s


def controller(store: Store, **kwargs: Any) -> RolloutController:
    return RolloutController(store, settle=0, **kwargs)


def on_candidate(store: Store) -> set[str]:
    policy = store.policy()
    return {r.name for r in store.tenants() if decide(policy, r, "v1").version == "v2"}


def test_lowering_says_how_many_tenants_the_ratchet_kept(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS)
    c.start("v2", percent=10)
    raised = c.set_percent(50)
    assert set(raised.moved) == on_candidate(store) - {
        n for n in TENANTS if bucket(raised.rollout.salt, n) < 1000
    }
    assert f"{len(raised.moved)} registered tenant(s) moved" in raised.summary()
    at_50 = on_candidate(store)
    preview = c.preview(5)
    lowered = c.set_percent(5)
    kept = {n for n in at_50 if bucket(lowered.rollout.salt, n) >= 500}
    assert lowered.kept == len(kept) > 0
    assert on_candidate(store) == at_50
    assert f"the ratchet kept {len(kept)} tenant(s) on v2" in lowered.summary()
    assert lowered.to_json()["kept"] == len(kept)
    assert (lowered.to_json()["from_percent"], lowered.to_json()["to_percent"]) == (50.0, 5.0)
    # The preview said so first, tenant by tenant, in the ratchet's words.
    assert set(preview.kept) == kept and preview.count == 0
    assert all("kept on v2 by the ratchet" in preview.stays[n] for n in kept)
    text = "\n".join(preview.summary())
    assert f"{len(kept)} kept on v2 by the ratchet" in text
    assert "although their bucket is in range" not in text
    # Lowering again counts the tenants an earlier lowering marked too.
    assert c.set_percent(1).kept == len(
        {n for n in at_50 if bucket(lowered.rollout.salt, n) >= 100}
    )
    assert c.set_percent(1).ratchet_note() is None  # nothing lowered: nothing to say


def test_the_cli_says_what_the_ratchet_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    s = open_store(url)
    s.register_versions(["v1", "v2"], "v1")
    controller(s).register(TENANTS)
    s.start_rollout("v2", 50, salt="cli")
    at_50 = on_candidate(s)
    result = cli("rollout", "set", "5", "--settle", "0", store=url)
    assert result.code == 0, result.err
    kept = len({n for n in at_50 if bucket("cli", n) >= 500})
    assert f"the ratchet kept {kept} tenant(s) on v2" in result.out
    s.close()


def test_rollback_says_who_a_pin_keeps_on_the_candidate(store: Store) -> None:
    c = controller(store)
    c.register(TENANTS[:20])
    c.start("v2", percent=50)
    store.pin("acme", "v2")
    note = c.rollback().note
    assert "ended" in note and "everybody is on v1 except 1 tenant(s)" in note
    assert "acme on v2 (pinned to v2)" in note
    store.unpin("acme")
    c.start("v2", percent=50)
    assert c.rollback().note.endswith("everybody is on v1")


def test_explain_on_a_store_without_a_default_says_what_to_do() -> None:
    c = controller(MemoryStore())
    with pytest.raises(ConflictError, match="no default version yet"):
        c.explain("acme")


def test_status_gives_percent_as_a_number(store: Store) -> None:
    c = controller(store)
    c.start("v2", plan=[1, 5, 50], every=60)
    rollout = c.status()["rollout"]
    assert (rollout["percent"], rollout["plan"]) == (1.0, [1.0, 5.0, 50.0])
    assert rollout["candidate"] == "v2" and rollout["next_change"] is None

"""``cohortroute.explain``: why is a tenant on its version, what would move it, at a given time."""

from __future__ import annotations

import pytest

from cohortroute.errors import ConflictError
from cohortroute.explain import current_rollout, decide_for, explain, tally
from cohortroute.policy import Policy, Rollout, TenantRecord

OLD, NEW = "2026.11", "2026.12"
START = 1_790_000_000.0


def policy(rollout: Rollout | None = None) -> Policy:
    return Policy(
        default=OLD, versions=frozenset({OLD, NEW}), rules=(("beta", NEW),), rollout=rollout
    )


def timed() -> Rollout:
    """A timed plan 0 -> 100 % after one hour: everybody is in once the hour has passed."""
    return Rollout(
        NEW, 0, "salt", started_at=START, plan=(0, 10_000), step=0, every=3600.0,
        step_started_at=START, auto=True,
    )  # fmt: skip


def test_the_answer_depends_on_the_time_asked() -> None:
    record = TenantRecord("acme")
    before = explain(policy(timed()), record, now=START + 1)
    after = explain(policy(timed()), record, now=START + 3601)
    assert (before.decision.version, after.decision.version) == (OLD, NEW)
    assert after.rollout is not None and after.rollout.percent == 10_000
    assert current_rollout(timed(), START + 3601) == after.rollout
    assert "while the percentage stays above" in after.hints[0]


def test_hints_use_the_command_given() -> None:
    explained = explain(
        policy(), TenantRecord("qa", pin=NEW), now=START, command="cohortroute --store X"
    )
    assert explained.hints == [
        "pinned: `cohortroute --store X unpin qa` to release it (it would then get "
        f"{OLD}, reason default)"
    ]


def test_tally_counts_stored_tenants_as_routers_decide() -> None:
    records = [TenantRecord("a", pin=NEW), TenantRecord("b", tags=frozenset({"beta"}))]
    counted = tally(policy(), [*records, TenantRecord("c", tags=frozenset({"paid"}))], START)
    assert counted.stored == 3
    assert counted.by_version == {OLD: 1, NEW: 2}
    assert counted.by_reason == {"pin": 1, "tag": 1, "default": 1}


def test_no_answer_before_a_router_registered_a_default() -> None:
    with pytest.raises(ConflictError, match="start one first"):
        decide_for(Policy(), TenantRecord("acme"), START)
    assert tally(Policy(), [TenantRecord("acme")], START).by_version == {}

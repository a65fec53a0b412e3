"""explain's hints while a gated rollout runs: a tenant a tag rule sends to the candidate but whose
data did not follow (its migration failed, or has not run) is on the default *while a rollout
runs* -- the hint used to say no rollout was running."""

from __future__ import annotations

from dataclasses import replace

from cohortroute import open_store
from cohortroute.explain import explain
from cohortroute.policy import Policy, TenantRecord, begin_rollout
from cohortroute.tenant_state import MigrationState

NOW = 1_790_000_000.0


def _gated_policy() -> Policy:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    store.set_rule("beta", "v2")
    policy = begin_rollout(store.policy(), "v2", percent=0, plan=(), salt="s", now=NOW, gated=True)
    assert policy.rollout is not None and policy.rollout.gated
    return policy


def test_a_tenant_whose_migration_failed_is_told_to_retry_it() -> None:
    failed = MigrationState("failed", "v1", "v2", NOW - 60, NOW - 50, error="boom")
    record = TenantRecord("globex", tags=frozenset({"beta"}), state={"migration": failed.to_json()})
    explained = explain(_gated_policy(), record, now=NOW)
    assert explained.decision.version == "v1"
    assert not any("no rollout is running" in hint for hint in explained.hints)
    assert explained.hints[0] == (
        "its migration to v2 failed (and was undone): fix the cause, then "
        "`cohortroute rollout run --app MODULE:ATTR --retry-failed` migrates it again"
    )


def test_a_tenant_whose_data_is_not_migrated_yet_is_told_why() -> None:
    record = TenantRecord("globex", tags=frozenset({"beta"}))
    explained = explain(_gated_policy(), record, now=NOW)
    assert explained.decision.version == "v1"
    assert explained.hints[0].startswith("on v1 while the rollout of v2 runs: tag beta")
    assert "not migrated to v2 yet" in explained.hints[0]


def test_without_a_rollout_the_hint_says_none_runs() -> None:
    policy = replace(_gated_policy(), rollout=None)
    explained = explain(policy, TenantRecord("acme"), now=NOW)
    assert "no rollout is running" in explained.hints[0]

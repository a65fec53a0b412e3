"""``RolloutController.status``: the rollout as it stands, and its tenants per state."""

from __future__ import annotations

from typing import Any

from ..policy import rollout_to_output
from ..store.base import Store


def rollout_status(store: Store, now: float) -> dict[str, Any]:
    """Counts per state, the failed migrations with their errors, and the tenants being
    migrated with whose lease and until when (a killed runner's wait for it to expire)."""
    policy = store.policy()
    rollout = None if policy.rollout is None else policy.rollout.at(now)
    counts = {"registered": 0, "ratchet": 0, "migrated": 0, "migrating": 0, "held": 0}
    failed: dict[str, str] = {}
    migrating: dict[str, dict[str, Any]] = {}
    for record in store.tenants():
        counts["registered"] += record.registered
        if rollout is not None:
            counts["ratchet"] += record.ratchet == rollout.candidate
            counts["migrated"] += record.data_version == rollout.candidate
            counts["held"] += record.held_salt == rollout.salt
        status = record.migration_status
        if status == "migrating":
            counts["migrating"] += 1
            lease = record.lease
            migrating[record.name] = {
                "owner": lease.owner if lease is not None and lease.owner else None,
                "expires": lease.expires if lease is not None and lease.owner else None,
            }
        if status in ("failed", "broken"):
            error = record.migration.error if record.migration is not None else None
            failed[record.name] = f"{status}: {error}"
    return {
        "default": policy.default,
        "tenants": counts,
        "failed": failed,
        "migrating": migrating,
        "rollout": rollout_to_output(policy.rollout, now),
    }

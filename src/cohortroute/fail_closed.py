"""Failing closed: what a router serves when it cannot confirm the store's state mid-migration.

A router cut off from the store keeps serving its last-known decisions. During a gated rollout
that is not safe for long: the migration runner, which may still reach the store, marks tenants
*migrating*, moves their data and flips them, and a router that cannot see that would serve the
old version on migrated data. So once a router has not confirmed the store's revision for
:func:`horizon` seconds while its last-known policy has a gated rollout, every tenant that
rollout can reach gets 503 with Retry-After (as while it migrates) until the router confirms
the revision again; tenants the rollout cannot reach keep their last-known version.

The runner's side of the bargain: it waits ``drain`` seconds between marking a tenant
*migrating* and touching its data, so ``drain`` must be at least the routers' horizon plus the
longest request (the default drain, twice the refresh interval, is, for refresh intervals of
0.5 s and more).
"""

from __future__ import annotations

import logging

from .bucketing import BUCKETS
from .decision import Decision, Reason
from .policy import Rollout, TenantRecord

log = logging.getLogger(__name__)

#: The least grace (seconds) past the refresh interval before a router fails closed.
MIN_GRACE = 0.25


def horizon(refresh_interval: float) -> float:
    """Seconds without a confirmed revision after which a router fails closed in a gated rollout.

    The refresh interval plus a grace of half of it (at least :data:`MIN_GRACE`), so one slow
    or lost revision check does not turn tenants away.
    """
    return refresh_interval + max(MIN_GRACE, refresh_interval / 2)


def reach(rollout: Rollout) -> int:
    """The highest percentage (basis points) ``rollout`` can get to: its plan's last step, or
    everybody without a plan (an operator may set any percentage)."""
    return max(rollout.plan) if rollout.plan else BUCKETS


def reachable(rollout: Rollout | None, decision: Decision, record: TenantRecord) -> bool:
    """True when a gated ``rollout`` can move this tenant's data while a router cannot see it.

    That is a tenant with migration marks (the runner or a rollback may move it), one the
    precedence already sends to the candidate, and one whose bucket is within the rollout's
    reach -- unless a pin or tag rule keeps it on another version.
    """
    if rollout is None or not rollout.gated:
        return False
    if record.data_version is not None or record.migration_status is not None:
        return True
    if decision.version == rollout.candidate:
        return True
    if decision.reason in (Reason.PIN, Reason.TAG, Reason.OVERRIDE, Reason.NO_TENANT):
        return False
    return decision.bucket is not None and decision.bucket < reach(rollout)


__all__ = ["MIN_GRACE", "horizon", "reach", "reachable"]

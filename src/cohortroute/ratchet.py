"""The ratchet: nobody a rollout moved to the candidate goes back, except through a rollback.

Raising the percentage only adds tenants, so the only moment a tenant could bounce back is when
the percentage is *lowered*. :func:`lower_percent` is the one path that lowers a rollout: it
first marks every registered tenant the bucket serves the candidate (``TenantRecord.ratchet``),
in batched writes, and only then lowers the percentage. In a gated rollout the tenant's migrated
data is the ratchet (the runner sets it at the flip), so nothing is marked. Only a rollback, or
the end of the rollout, clears the marks (:func:`clear_marks`).

Every function takes the store, so the store's own API (:meth:`Store.set_percent
<cohortroute.store.base.Store.set_percent>`) lowers a rollout exactly as the controller does.
This module sits beside the store rather than inside :mod:`cohortroute.rollout` for that reason:
it needs the store only as a type, so the store can import it without a cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from .bucketing import rollout_bucket
from .decision import Decision, Reason, intended
from .errors import ConflictError
from .policy import STATE_DATA, STATE_HELD, Policy, Rollout, TenantRecord

if TYPE_CHECKING:
    from .assign.chain import Chain
    from .store.base import Store

log = logging.getLogger(__name__)

RecordChange = Callable[[TenantRecord, Policy], TenantRecord]


def ratchets(decision: Decision, rollout: Rollout, record: TenantRecord) -> bool:
    """True when the tenant is on the candidate because of its bucket (so lowering would move it
    back unless its ratchet is set)."""
    return (
        decision.reason is Reason.ROLLOUT
        and decision.version == rollout.candidate
        and record.pin is None
    )


def bucket_at_least(rollout: Rollout, tenant: str, points: int) -> bool:
    """True when the tenant's bucket in ``rollout`` is ``points`` or more."""
    return rollout_bucket(rollout, tenant) >= points


def _same_rollout(salt: str) -> Callable[[Policy], None]:
    def check(policy: Policy) -> None:
        if policy.rollout is None or policy.rollout.salt != salt:
            raise ConflictError("the rollout changed meanwhile; check `status` and retry")

    return check


def kept_on_lowering(
    store: Store, current: Rollout, points: int, chain: Chain | None = None
) -> list[TenantRecord]:
    """The registered tenants on the candidate by their bucket that lowering to ``points`` would
    drop: the ones the ratchet keeps (in a gated rollout, those whose data is migrated), as
    the routers' assignment backends (``chain``) decide."""
    policy = replace(store.policy(), rollout=replace(current, auto=False))
    default = policy.default or ""
    return [
        record
        for record in store.tenants()
        if keeps(intended(policy, record, default, chain=chain), current, record, points)
    ]


def keeps(decision: Decision, current: Rollout, record: TenantRecord, points: int) -> bool:
    """True when lowering ``current`` to ``points`` leaves this tenant (``decision`` before the
    lowering) on the candidate by the ratchet: in a gated rollout, only with migrated data."""
    return (
        ratchets(decision, current, record)
        and bucket_at_least(current, record.name, points)
        and (not current.gated or record.data_version == current.candidate)
    )


def mark_ratchets(
    store: Store, current: Rollout, points: int, *, actor: str | None, chain: Chain | None = None
) -> int:
    """Mark every tenant the bucket serves the candidate whose bucket is ``points`` or more.

    ``current`` is the rollout as it stands now (a timed plan moved on by the clock). Returns
    how many registered tenants the ratchet keeps on the candidate below ``points``: the ones
    marked now and the ones an earlier lowering marked already.
    """
    kept = kept_on_lowering(store, current, points, chain)
    names = [record.name for record in kept if record.ratchet != current.candidate]
    check = _same_rollout(current.salt)

    def mark(record: TenantRecord, p: Policy) -> TenantRecord:
        check(p)
        return replace(record, ratchet=current.candidate)

    store.update_tenants(
        names, "ratchet", mark, describe=lambda b, a: (b.ratchet, a.ratchet), actor=actor
    )
    log.debug("marked %d tenant(s) before lowering to %d basis points", len(names), points)
    return len(kept)


def ramp_step(plan: tuple[int, ...], points: int) -> int:
    """The index of the last ramp step at or below ``points`` (-1 below the first)."""
    return max((i for i, p in enumerate(plan) if p <= points), default=-1)


def lower_percent(
    store: Store,
    stored: Rollout,
    current: Rollout,
    points: int,
    *,
    step: int,
    now: float,
    action: str = "rollout-set",
    actor: str | None = None,
    chain: Chain | None = None,
) -> int:
    """Lower the rollout from ``current`` to ``points`` basis points, keeping the ratchet.

    ``stored`` is the rollout as read from the store: the write is refused with
    :class:`ConflictError` when it changed meanwhile. After the marks a lowering moves no
    registered tenant, so the percentage change carries no per-tenant audit entries. Returns
    how many registered tenants the ratchet keeps on the candidate although the new
    percentage no longer reaches them.
    """
    if points >= current.percent:
        raise ValueError(f"lower_percent lowers: {points} is not below {current.percent}")
    if current.gated:  # the migrated data is the ratchet: nothing to mark
        kept = len(kept_on_lowering(store, current, points, chain))
    else:
        kept = mark_ratchets(store, current, points, actor=actor, chain=chain)
    store.update_policy(action, change_percent(stored, current, points, step, now), actor=actor)
    return kept


def change_percent(
    stored: Rollout, current: Rollout, points: int, step: int, now: float
) -> Callable[[Policy], Policy]:
    """The policy change that puts the rollout at ``points`` (ramp step ``step``), refused when
    the stored rollout is no longer ``stored``."""

    def update(policy: Policy) -> Policy:
        if policy.rollout != stored:
            raise ConflictError(
                "the rollout changed while this command ran; check `status` and retry"
            )
        new = replace(current, percent=points, step=step, step_started_at=now)
        return replace(policy, rollout=new)

    return update


def clear_stale_ratchets(store: Store, *, actor: str | None) -> None:
    """Ratchet marks left by an interrupted rollback or finalize must not leak into a new
    rollout of the same candidate."""
    names = [r.name for r in store.tenants() if r.ratchet is not None]
    store.update_tenants(
        names,
        "ratchet-clear",
        lambda r, p: replace(r, ratchet=None) if p.rollout is None else r,
        audit_each=False,
        actor=actor,
    )


def clear_held(store: Store, rollout: Rollout, default: str | None, *, actor: str | None) -> None:
    """Finalize takes rolled-back tenants along too; each one's history says so."""
    names = [r.name for r in store.tenants() if r.held_salt == rollout.salt]
    after = "once migrated" if rollout.gated else rollout.candidate
    store.update_tenants(
        names,
        "finalize-unhold",
        without_keys(STATE_HELD),
        describe=lambda b, a: ({"version": default, "held": True}, {"version": after}),
        actor=actor,
    )


def clear_marks(store: Store, rollout: Rollout, action: str, *, actor: str | None) -> None:
    """After the rollout ended: drop its ratchets, held marks and data marks."""
    names = [
        r.name
        for r in store.tenants()
        if r.ratchet is not None or r.held_salt == rollout.salt or r.data_version is not None
    ]
    strip = without_keys(STATE_HELD, STATE_DATA)

    def clear(record: TenantRecord, policy: Policy) -> TenantRecord:
        if policy.rollout is not None:
            return record  # a new rollout started meanwhile: leave its marks alone
        return replace(strip(record, policy), ratchet=None)

    store.update_tenants(names, action, clear, audit_each=False, actor=actor)


def hold(record: TenantRecord, salt: str) -> TenantRecord:
    """The record of a tenant rolled back from the rollout with ``salt``: held on the default
    for the rest of that rollout, ratchet cleared."""
    return replace(record, state={**record.state, STATE_HELD: salt}, ratchet=None)


def without_keys(*keys: str) -> RecordChange:
    """A record change dropping ``keys`` from the tenant's state (no write when absent)."""

    def strip(record: TenantRecord, policy: Policy) -> TenantRecord:
        if not any(k in record.state for k in keys):
            return record
        return replace(record, state={k: v for k, v in record.state.items() if k not in keys})

    return strip

"""How a rollout ends: rolled back (everybody, or one tenant, back to the default) or finalized.

Both move tenants' data through the runner when the rollout is gated, and clear the rollout's
marks (ratchets, held tenants, data versions) once it has ended.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

from .. import ratchet
from ..advice import Call, advise
from ..decision import decide, intended
from ..errors import ConflictError, listed
from ..policy import BUSY_STATUSES, Policy, Rollout, TenantRecord, check_tenant_name
from . import jobs
from .context import Progress, RolloutContext
from .results import RunResult, TenantResult

ROLLING_BACK = "rolling back"
"""The halt reason of a rollout being rolled back (it stays so while a tenant failed to move)."""

log = logging.getLogger(__name__)


def rollback(
    ctx: RolloutContext,
    tenant: str | None,
    force: bool,
    concurrency: int,
    progress: Progress | None,
) -> RunResult:
    """:meth:`RolloutController.rollback`: halt, move data back, end, clear the marks."""
    policy = ctx.store.policy()
    rollout = ctx.require_migrations(policy, "rollout rollback")
    if tenant is not None:
        return _rollback_one(ctx, policy, rollout, check_tenant_name(tenant), force)
    result = RunResult("rollback")
    if rollout.gated:

        def moved() -> list[TenantRecord]:
            return [
                r
                for r in ctx.store.tenants()
                if r.data_version == rollout.candidate or r.migration_status in BUSY_STATUSES
            ]

        if not force:
            jobs.refuse_missing_downgrades(ctx.migrations, policy, moved())
        ctx.halt(ROLLING_BACK)
        # Listed after the halt: a runner may have taken (or finished) a tenant since the check
        # above; from the halt on, no runner takes a new one.
        records = moved()
        result = ctx.batch(
            "rollback",
            [r.name for r in records],
            "back",
            concurrency,
            None,
            progress,
            force=force,
        )
        if result.failures:
            result.completed = False
            result.note = "the rollout stays halted: fix the failed tenants, then roll back again"
            return result

    def update(p: Policy) -> Policy:
        if p.rollout is None or p.rollout.salt != rollout.salt:
            raise ConflictError("the rollout changed meanwhile; check `status` and retry")
        return replace(p, rollout=None)

    result.results.extend(ctx.commit_policy("rollout-rollback", update))
    ratchet.clear_marks(ctx.store, rollout, "rollback-clear", actor=ctx.actor)
    result.note = _who_is_where(ctx, rollout)
    return result


def _who_is_where(ctx: RolloutContext, rollout: Rollout) -> str:
    """What is true once the rollout ended: everybody on the default, except whom a pin or a
    tag rule keeps elsewhere (a pin to the candidate, say)."""
    policy = ctx.store.policy()
    default = policy.default or ""
    now = ctx.now()
    elsewhere = [
        (record.name, decision)
        for record in ctx.store.tenants()
        if (decision := decide(policy, record, default, now=now, chain=ctx.chain)).version
        != default
    ]
    ended = f"the rollout of {rollout.candidate} ended"
    if not elsewhere:
        return f"{ended}; everybody is on {default}"
    shown = listed([f"{name} on {d.version} ({d.detail})" for name, d in elsewhere])
    return (
        f"{ended}; everybody is on {default} except {len(elsewhere)} tenant(s) a pin or tag "
        f"rule keeps elsewhere: {shown} (unpin them or remove the rule to move them too)"
    )


def finalize(
    ctx: RolloutContext, force: bool, concurrency: int, progress: Progress | None
) -> RunResult:
    """:meth:`RolloutController.finalize`: migrate everybody, then the candidate is the default."""
    policy = ctx.store.policy()
    rollout = ctx.require_migrations(policy, "rollout finalize")
    fenced = [r.name for r in ctx.store.tenants() if r.migration and r.migration.fenced]
    if fenced:
        raise advise(
            ConflictError,
            f"{len(fenced)} tenant(s) are broken because a migration step finished after its "
            f"runner lost the lease ({', '.join(fenced[:10])}): check their data, then {{retry}}"
            ", and finalize again",
            retry=Call("rollout run", "run", ("--retry-failed",), "retry_failed=True"),
        )
    old = policy.default
    pinned = [r.name for r in ctx.store.tenants() if old is not None and r.pin == old]
    rules = [tag for tag, version in policy.rules if version == old]
    if (pinned or rules) and not force:
        parts = []
        if pinned:
            shown = ", ".join(pinned[:10]) + (" ..." if len(pinned) > 10 else "")
            parts.append(f"{len(pinned)} tenant(s) are pinned to {old} ({shown})")
        if rules:
            parts.append(f"tag rule(s) {', '.join(rules)} send tenants to {old}")
        raise advise(
            ConflictError,
            f"{' and '.join(parts)}, so finalize could not move everybody to "
            f"{rollout.candidate}: unpin them / remove the rules, or {{force}} to remove them "
            "as part of finalize",
            force=Call("rollout finalize", "finalize", ("--force",), "force=True"),
        )
    for name in pinned:
        ctx.store.unpin(name, actor=ctx.actor)
    for tag in rules:
        ctx.store.remove_rule(tag, actor=ctx.actor)

    def everybody(p: Policy) -> Policy:
        r = ctx.require(p)
        if r.salt != rollout.salt:
            raise ConflictError("the rollout changed meanwhile; check `status` and retry")
        return replace(
            p,
            rollout=replace(
                r.at(ctx.now()), percent=10_000, halted=False, halt_reason=None, auto=False
            ),
        )

    result = RunResult("finalize", ctx.commit_policy("rollout-finalize-start", everybody))
    ratchet.clear_held(ctx.store, rollout, old, actor=ctx.actor)
    if rollout.gated:
        ctx.discover()
        for attempt in itertools.count():
            current = ctx.store.policy()
            now = ctx.now()
            # Everybody, whatever custom backends say (finalize ends on one version): the
            # built-ins at 100 % reach every tenant no pin or tag rule keeps elsewhere.
            names = [
                r.name
                for r in ctx.store.tenants()
                if jobs.is_pending(current, r, now, retry_failed=True, intends=jobs.BUILTINS_ONLY)
            ]
            if not names:
                if attempt > 0 or ctx.settle <= 0:
                    break
                ctx.sleep(ctx.settle)  # let routers flush tenants they just served
                continue
            batch = ctx.batch(
                "finalize", names, "forward", concurrency, None, progress, retry_failed=True
            )
            result.results.extend(batch.results)
            if batch.failures or any(r.outcome == "busy" for r in batch.results):
                result.completed = False
                result.note = (
                    f"the rollout stays at 100 % with {rollout.candidate} not yet the "
                    "default: fix the failed (or busy) tenants, then finalize again"
                )
                return result
            if ctx.settle > 0:
                ctx.sleep(ctx.settle)

    def commit(p: Policy) -> Policy:
        r = ctx.require(p)
        if r.salt != rollout.salt:
            raise ConflictError("the rollout changed meanwhile; check `status` and retry")
        return replace(p, default=r.candidate, rollout=None)

    ctx.store.update_policy("rollout-finalize", commit, actor=ctx.actor)
    ratchet.clear_marks(ctx.store, rollout, "finalize-clear", actor=ctx.actor)
    result.note = f"{rollout.candidate} is the default now and serves everybody"
    return result


def _rollback_one(
    ctx: RolloutContext, policy: Policy, rollout: Rollout, name: str, force: bool
) -> RunResult:
    record = ctx.store.tenant(name)
    default = policy.default or ""
    held = ratchet.hold(record, rollout.salt)
    still = intended(policy, held, default, now=ctx.now(), chain=ctx.chain)
    if still.version == rollout.candidate:
        raise ConflictError(
            f"{name} would stay on {rollout.candidate} after a rollback ({still.detail}): "
            f"unpin or untag it first"
        )
    result = RunResult("rollback")
    if rollout.gated and (
        record.data_version == rollout.candidate or record.migration_status in BUSY_STATUSES
    ):
        if not force:
            jobs.refuse_missing_downgrades(ctx.migrations, policy, [record])
        result.results.append(ctx.runner.move(name, "back", force=force, hold=True))
        return result
    before = decide(policy, record, default, now=ctx.now(), chain=ctx.chain)

    def update(r: TenantRecord, p: Policy) -> TenantRecord:
        if p.rollout is None or p.rollout.salt != rollout.salt:
            raise ConflictError("the rollout changed meanwhile; check `status` and retry")
        return ratchet.hold(r, rollout.salt)

    ctx.store.update_tenants(
        [name],
        "rollback",
        update,
        describe=lambda b, a: ({"version": before.version}, {"version": default, "held": True}),
        actor=ctx.actor,
    )
    moved = before.version != default
    result.results.append(
        TenantResult(name, "moved" if moved else "unchanged", before.version, default)
    )
    return result

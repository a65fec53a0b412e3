"""What moving a tenant's data takes: who is pending, which migration steps, what is refused.

Pure functions of the policy, the tenant's record and the app's
:class:`~cohortroute.migrations.Migrations`; the runner calls :func:`plan_job` inside the lease
transaction, so what it does is decided on the record as stored at that moment. Who the rollout
has reached is decided by an :data:`Intends`: the routers' assignment chain for ``run`` (so the
runner migrates exactly the tenants routers would put on the candidate), the built-ins for
``finalize`` (which moves everybody).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..advice import Call, advise
from ..decision import Decision, intended
from ..errors import ConflictError
from ..migrations import Migrations, MigrationStep
from ..policy import BUSY_STATUSES, STATE_MODULES, MigrationState, Policy, TenantRecord

if TYPE_CHECKING:
    from ..assign.chain import Chain

Intends = Callable[[Policy, TenantRecord, float], Decision]
"""Where the precedence wants a tenant at a time, before migration gating (see
:func:`cohortroute.decision.intended`)."""


def intends_with(chain: Chain | None) -> Intends:
    """:data:`Intends` deciding with ``chain`` (the routers' backends; the built-ins if None)."""

    def intends(policy: Policy, record: TenantRecord, now: float) -> Decision:
        return intended(policy, record, policy.default or "", now=now, chain=chain)

    return intends


BUILTINS_ONLY: Intends = intends_with(None)
"""Pins, tag rules and the rollout only: what ``finalize`` uses, as it moves everybody."""


def asked_before(chain: Chain, policy: Policy, record: TenantRecord, now: float) -> Intends:
    """:data:`Intends` for one tenant's lease transaction, with ``chain`` asked once before it.

    A custom backend may be slow or remote, and a store's write transaction must not wait on
    it: its answer for the ``policy`` and ``record`` read before the transaction is reused
    inside while they are unchanged (the rollout as it stands, the tenant's pin, tags, marks),
    and the chain is asked again only when they changed in between.
    """
    intends = intends_with(chain)
    answer = intends(policy, record, now)
    seen = (_as_decided(policy, now), record)

    def remembered(p: Policy, r: TenantRecord, at: float) -> Decision:
        if (_as_decided(p, at), r) == seen:
            return answer
        return intends(p, r, at)

    return remembered


def _as_decided(policy: Policy, now: float) -> Policy:
    """The policy as a decision at ``now`` reads it: timed plans moved on, no revision."""
    rollout = None if policy.rollout is None else policy.rollout.at(now)
    return replace(policy, rollout=rollout, revision=0)


@dataclass(frozen=True, slots=True)
class Job:
    """One tenant's pending move, computed inside the lease transaction."""

    source: str
    target: str
    start_modules: dict[str, int]
    target_modules: dict[str, int]
    steps: tuple[MigrationStep, ...]
    resume: bool
    hold: str | None


def modules_for(migrations: Migrations | None, version: str) -> dict[str, int]:
    """The module versions ``version`` needs (none without migrations)."""
    return {} if migrations is None else migrations.modules_for(version)


def modules_of(
    migrations: Migrations | None, policy: Policy, record: TenantRecord
) -> dict[str, int]:
    """The module versions a tenant's data is at: recorded, or else the default's."""
    stored = record.state.get(STATE_MODULES)
    if isinstance(stored, Mapping):
        return {str(k): int(v) for k, v in stored.items() if int(v)}
    return modules_for(migrations, policy.default or "")


def steps_between(
    migrations: Migrations | None, current: Mapping[str, int], target: Mapping[str, int]
) -> list[MigrationStep]:
    """The migration steps from module versions ``current`` to ``target``."""
    return [] if migrations is None else migrations.steps_between(current, target)


def is_pending(
    policy: Policy,
    record: TenantRecord,
    now: float,
    *,
    retry_failed: bool,
    intends: Intends = BUILTINS_ONLY,
) -> bool:
    """Whether the tenant's data needs moving to the candidate: a first look over the registry,
    and again inside the lease transaction, which decides for real.

    ``intends`` decides who the rollout has reached; give it the routers' chain
    (:func:`intends_with`), else custom backends are ignored and the runner migrates tenants
    they hold back (migrated data is served the candidate) and never those they send early.
    """
    rollout = policy.rollout
    if rollout is None or not rollout.gated:
        return False
    migration = record.migration or MigrationState(None)
    if migration.status in BUSY_STATUSES:
        return retry_failed or not migration.fenced  # fenced: its data needs a look first
    if rollout.halted or record.data_version == rollout.candidate:
        return False
    if (
        migration.status == "failed"
        and not retry_failed
        and migration.to_version == rollout.candidate
    ):
        return False
    return intends(policy, record, now).version == rollout.candidate


def pending(
    policy: Policy,
    records: Iterable[TenantRecord],
    now: float,
    retry_failed: bool,
    chain: Chain | None,
    only: Collection[str] | None = None,
) -> list[str]:
    """The tenants (of ``only``) whose data ``run`` moves: those the routers' assignment
    ``chain`` puts on the candidate that are not migrated yet, and interrupted migrations."""
    intends = intends_with(chain)
    return [
        r.name
        for r in records
        if (only is None or r.name in only)
        and is_pending(policy, r, now, retry_failed=retry_failed, intends=intends)
    ]


def refuse_missing_downgrades(
    migrations: Migrations | None, policy: Policy, records: Iterable[TenantRecord]
) -> None:
    """Raise ConflictError naming the tenants whose way back lacks a declared downgrade."""
    missing: dict[str, list[str]] = {}
    target = modules_for(migrations, policy.default or "")
    for record in records:
        steps = steps_between(migrations, modules_of(migrations, policy, record), target)
        gaps = [str(s) for s in steps if s.run is None]
        if gaps:
            missing[record.name] = gaps
    if missing:
        first = next(iter(missing.items()))
        raise advise(
            ConflictError,
            f"cannot roll back {len(missing)} tenant(s) ({', '.join(list(missing)[:10])}): "
            f"their migration has no downgrade for {', '.join(first[1])}. Declare the "
            "downgrade step(s) with @migrations.downgrade(...), or {force} to move them "
            "back leaving those changes in their data",
            force=Call("rollout rollback", "rollback", ("--force",), "force=True"),
        )


def plan_job(
    migrations: Migrations | None,
    policy: Policy,
    record: TenantRecord,
    mode: str,
    now: float,
    force: bool,
    hold: bool,
    retry_failed: bool,
    intends: Intends = BUILTINS_ONLY,
) -> Job | str | None:
    """What moving this tenant takes now: a job, a refusal message, or None (nothing).

    ``mode`` is ``forward`` (to the candidate) or ``back`` (to the default); ``hold`` keeps
    the tenant on the default for the rest of the rollout once moved back; ``intends`` decides
    whether a forward move is pending (:func:`is_pending`).
    """
    rollout = policy.rollout
    if rollout is None or not rollout.gated:
        return None
    default = policy.default or ""
    migration = record.migration or MigrationState(None)
    busy = migration.status in BUSY_STATUSES
    source = rollout.candidate if record.data_version == rollout.candidate else default
    if mode == "back":
        target = default
        if not busy and source == default and not hold:
            return None
    elif busy:
        if migration.fenced and not retry_failed:
            return (
                f"{record.name} is broken: {migration.error}"
                if migration.error
                else f"{record.name} is broken; check its data, then retry it"
            )
        target = migration.to_version or rollout.candidate
        source = migration.from_version or source
    else:
        if not is_pending(policy, record, now, retry_failed=retry_failed, intends=intends):
            return None
        target = rollout.candidate
    current = modules_of(migrations, policy, record)
    wanted = modules_for(migrations, target)
    steps = steps_between(migrations, current, wanted)
    gaps = [str(s) for s in steps if s.run is None]
    if gaps and not force:
        return (
            f"no downgrade is declared for {', '.join(gaps)}; declare it, or force the "
            "rollback to leave those changes in the tenant's data"
        )
    return Job(
        source=source,
        target=target,
        start_modules=current,
        target_modules=wanted,
        steps=tuple(steps),
        resume=busy,
        hold=rollout.salt if hold else (migration.hold if busy else None),
    )


def undo_steps(migrations: Migrations, job: Job, done: list[MigrationStep]) -> list[MigrationStep]:
    """The steps that put a tenant's data back where its old version needs it.

    A fresh run undoes the steps it applied. A resumed run (a crashed runner's tenant) also
    undoes the steps the crashed run applied, which ``done`` does not list: it goes back to
    the source version's modules, else the tenant would be marked failed and served its old
    version on half-migrated data.
    """
    if not job.resume:
        return [migrations.reverse(step) for step in reversed(done)]
    current = dict(job.start_modules)
    for step in done:
        current[step.module] = step.after
    return migrations.steps_between(current, modules_for(migrations, job.source))


def held_elsewhere(name: str, owner: str, until: float) -> str:
    """Why a tenant another runner holds cannot be moved back now, and when to try again."""
    expiry = time.strftime("%H:%M:%S UTC", time.gmtime(until))
    return (
        f"{name} is being migrated by another runner ({owner}, lease until {expiry}; a "
        "killed runner's lease runs out then): roll back again once that run has finished or "
        "the lease has expired (`cohortroute rollout status` lists it)"
    )

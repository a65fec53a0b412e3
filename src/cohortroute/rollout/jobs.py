"""What moving a tenant's data takes: who is pending, which migration steps, what is refused.

Pure functions of the policy, the tenant's record and the app's
:class:`~cohortroute.migrations.Migrations`; the runner calls :func:`plan_job` inside the lease
transaction, so what it does is decided on the record as stored at that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..advice import Call, advise
from ..decision import intended
from ..errors import ConflictError
from ..migrations import Migrations, MigrationStep
from ..policy import BUSY_STATUSES, STATE_MODULES, MigrationState, Policy, TenantRecord


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


def is_pending(policy: Policy, record: TenantRecord, now: float, *, retry_failed: bool) -> bool:
    """A cheap first look at whether the tenant's data needs moving; the lease transaction
    decides for real."""
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
    return intended(policy, record, policy.default or "", now=now).version == rollout.candidate


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
) -> Job | str | None:
    """What moving this tenant takes now: a job, a refusal message, or None (nothing).

    ``mode`` is ``forward`` (to the candidate) or ``back`` (to the default); ``hold`` keeps
    the tenant on the default for the rest of the rollout once moved back.
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
        if not is_pending(policy, record, now, retry_failed=retry_failed):
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

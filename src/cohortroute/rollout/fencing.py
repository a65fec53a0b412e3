"""Fencing: a runner that lost its lease never touches the tenant again, or says so loudly.

A runner paused past its lease (SIGSTOP, a long garbage-collection pause, a frozen VM) wakes up
after another runner took the tenant over, maybe after that runner finished and flipped it. The
lease's *generation* (the fencing token, :attr:`Lease.generation
<cohortroute.policy.Lease.generation>`) tells them apart. The runner checks it before every step
and before recording one, and a step may pass it to the app's own writes (see
:class:`~cohortroute.migrations.StepContext`), so a fenced write is refused by the app's
database itself. When a step nevertheless *finished* after the lease was lost, nobody can vouch
for the tenant's data: :func:`breach_update` marks it *broken* (routers answer it 503, whatever
the flip said) in one write that also moves the generation on, so the runner that holds the
lease now stops at its next write too; the controller then halts the rollout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ..migrations import LeaseLostError
from ..policy import STATE_LEASE, STATE_MIGRATION, Lease, MigrationState, Policy, TenantRecord

log = logging.getLogger(__name__)


class LeaseLost(LeaseLostError):
    """The runner found its lease taken; ``touched`` names what it changed in the tenant's data
    after losing it (a step, or the restore hook), None when it changed nothing."""

    def __init__(self, message: str, touched: str | None = None) -> None:
        super().__init__(message)
        self.touched = touched


def lost(token: str) -> LeaseLost:
    """The error for a runner whose lease ``token`` is no longer the tenant's."""
    return LeaseLost(
        f"lost the lease on this tenant to another runner (runner {token} was paused or slowed "
        "past its lease); that runner carries on"
    )


def breach_error(name: str, touched: str, generation: int, current: int) -> str:
    """What an operator reads about a tenant whose data a fenced-out runner changed."""
    return (
        f"FENCED: {touched} finished after this runner had lost its lease (generation "
        f"{generation}; the tenant's lease is at generation {current}), so two runners may have "
        f"changed {name}'s data. It stays in maintenance (503): check its data, then "
        f"`cohortroute rollout run --retry-failed --app ...` to finish the migration, or "
        f"`cohortroute rollout rollback --tenant {name} --force --app ...` to move it back"
    )


def breach_update(
    exc: LeaseLost, generation: int, fallback: MigrationState
) -> tuple[dict[str, str], Callable[[TenantRecord, Policy], TenantRecord]]:
    """The record change marking a tenant broken after a step finished outside its lease.

    Returns the error text (filled in inside the transaction, under ``"error"``) and the update.
    A tenant already marked by another fenced-out runner is left as it is.
    """
    touched = exc.touched or "a step"
    found: dict[str, str] = {}

    def update(record: TenantRecord, policy: Policy) -> TenantRecord:
        migration = record.migration
        if migration is not None and migration.fenced:
            found["error"] = migration.error or ""
            return record
        lease = record.lease or Lease("", 0.0, generation)
        error = breach_error(record.name, touched, generation, lease.generation)
        found["error"] = error
        base = migration if migration is not None else fallback
        marked = replace(
            base,
            status="broken",
            from_version=base.from_version or fallback.from_version,
            to_version=base.to_version or fallback.to_version,
            finished=fallback.finished,
            error=error,
            fenced=True,
        )
        state = dict(record.state)
        # The next generation: the runner holding the lease now (if any) stops at its next write.
        state[STATE_LEASE] = Lease("", 0.0, max(lease.generation, generation) + 1).to_json()
        state[STATE_MIGRATION] = marked.to_json()
        return replace(record, state=state)

    return found, update

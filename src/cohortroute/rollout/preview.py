"""The dry run: exactly which registered tenants move when a rollout goes to another percent.

Computed with the router's own :func:`~cohortroute.decision.intended` and bucket function over
every tenant the store knows, before and after the change, so pins, tag rules, rolled-back
tenants and ratchets are accounted for exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..advice import Call, advise
from ..assign.chain import Chain
from ..decision import intended
from ..errors import ConflictError
from ..policy import Policy, Rollout, TenantRecord, next_step_index, parse_percent
from ..ratchet import keeps
from .results import Preview


def compute_preview(
    policy: Policy,
    current: Rollout,
    target: int,
    step: int | None,
    records: Iterable[TenantRecord],
    chain: Chain | None = None,
) -> Preview:
    """Who moves when ``current`` (the rollout as it stands now) goes to ``target`` points,
    deciding with the routers' assignment backends (``chain``; the built-ins when None)."""
    before = replace(policy, rollout=replace(current, auto=False))
    after = replace(policy, rollout=replace(current, auto=False, percent=target))
    lowering = target < current.percent
    default = policy.default or ""
    moves: list[str] = []
    migrate: list[str] = []
    stays: dict[str, str] = {}
    kept: list[str] = []
    considered = 0
    for record in records:
        considered += 1
        old = intended(before, record, default, chain=chain)
        if lowering and keeps(old, current, record, target):
            kept.append(record.name)
            if not current.gated:
                record = replace(record, ratchet=current.candidate)  # what lowering marks first
        new = intended(after, record, default, chain=chain)
        migrated = record.data_version == current.candidate
        if (
            new.version != old.version
            and current.gated
            and not migrated
            and old.version == current.candidate
        ):
            # Only scheduled for a migration, never served the candidate: nothing moves.
            stays[record.name] = f"not migrated yet, so it stays on {default}"
        elif new.version != old.version:
            moves.append(record.name)
            if current.gated and new.version == current.candidate and not migrated:
                migrate.append(record.name)
        elif new.bucket is not None and _between(new.bucket, current.percent, target):
            stays[record.name] = new.detail
    return Preview(
        candidate=current.candidate,
        default=default,
        from_percent=current.percent,
        to_percent=target,
        step=step,
        moves=tuple(moves),
        migrate=tuple(migrate),
        stays=stays,
        considered=considered,
        kept=tuple(kept),
    )


def preview_target(current: Rollout, percent: float | str | None) -> tuple[int, int | None]:
    """The percent (basis points) and ramp step a preview is about: ``percent``, or the next
    step of the plan."""
    if percent is not None:
        points = parse_percent(percent)
        return points, (current.plan.index(points) if points in current.plan else None)
    index = next_step_index(current.plan, current.percent)
    if index is None:
        raise advise(
            ConflictError,
            "there is no next step to preview (no plan, or at its last step); "
            "preview a percentage instead: {at}",
            at=Call("rollout preview", "preview", ("--percent", "50"), "50"),
        )
    return current.plan[index], index


def _between(value: int, a: int, b: int) -> bool:
    low, high = min(a, b), max(a, b)
    return low <= value < high

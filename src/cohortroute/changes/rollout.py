"""Change functions for the rollout and the policy as a whole."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import replace

from .._clock import SYSTEM, Clock
from ..errors import ValidationError
from ..policy import (
    Rollout,
    begin_rollout,
    format_percent,
    parse_percent,
    parse_plan,
    rollout_to_json,
)
from .base import (
    ChangeFn,
    Moves,
    Mutation,
    PolicyUpdate,
    StateReader,
    require_rollout,
)

log = logging.getLogger(__name__)


# --- the rollout and the policy -------------------------------------------------------------------


def check_unleash(before: Rollout | None, after: Rollout | None) -> None:
    """Refuse what an Unleash-bucketed rollout cannot be: a fraction of a percent (as the
    percentage or a plan step: Unleash has whole percentages only, so 10.5 % would serve 11 %)
    or a blank salt (the salt is the toggle's Unleash groupId).

    Only what the change sets is checked (``before`` is the stored rollout, None when there is
    none), so a rollout stored before this rule still halts, resumes and ends. Every change to
    the rollout goes through this module, so the store, the controller and the CLI refuse alike.
    """
    if after is None or after.bucketer != "unleash":
        return
    kept = before if before is not None and before.started_at == after.started_at else None
    if (kept is None or kept.salt != after.salt) and not after.salt.strip():
        raise ValidationError(
            "an Unleash rollout needs the toggle's groupId as its salt, not a blank one "
            "(Unleash's default groupId is the toggle's name), like salt='my-toggle' "
            "(--salt my-toggle)"
        )
    if kept is None or kept.percent != after.percent:
        check_whole_percent(after.percent)
    if kept is None or kept.plan != after.plan:
        for points in after.plan:
            check_whole_percent(points, "plan step ")


def check_whole_percent(points: int, what: str = "") -> None:
    """Refuse ``points`` basis points that are not a whole percentage, for an Unleash rollout
    (``what`` names it in the message, e.g. ``"plan step "``)."""
    if points % 100:
        lower = points // 100 * 100
        raise ValidationError(
            f"an Unleash rollout (bucketer unleash) moves in whole percentages only, as Unleash "
            f"does: {what}{format_percent(points)} would serve {format_percent(lower + 100)}; "
            f"give {format_percent(lower)} or {format_percent(lower + 100)}"
        )


def start_rollout(
    candidate: str,
    percent: float | str = 0,
    *,
    salt: str | None = None,
    plan: Sequence[float | str] = (),
    every: float | None = None,
    clock: Clock = SYSTEM,
) -> ChangeFn:
    """Start the rollout of ``candidate`` at ``percent`` (the first plan step when 0 and a plan)."""
    steps = parse_plan(plan)
    points = parse_percent(percent) if plan == () or percent != 0 else steps[0]
    rollout_salt = salt if salt is not None else f"{candidate}:{secrets.token_hex(8)}"

    def change(state: StateReader) -> Mutation:
        policy = begin_rollout(
            state.policy(),
            candidate,
            percent=points,
            plan=steps,
            salt=rollout_salt,
            now=clock.time(),
            every=every,
        )
        m = Mutation(policy=policy)
        m.record("rollout-start", None, None, rollout_to_json(policy.rollout))
        return m

    return change


def set_rollout_percent(percent: float | str, *, clock: Clock = SYSTEM) -> ChangeFn:
    """Change the running rollout's percent: the one code path that moves it up or down.

    This is the raw state change: lowering it moves tenants back without ratchet marks
    (:meth:`cohortroute.RolloutController.set` marks them first).
    """
    points = parse_percent(percent)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        rollout = require_rollout(policy)
        m = Mutation()
        if rollout.percent != points:
            step = rollout.plan.index(points) if points in rollout.plan else rollout.step
            new = replace(rollout, percent=points, step=step, step_started_at=clock.time())
            check_unleash(rollout, new)
            m.record("rollout-set", None, rollout.percent, points)
            m.policy = replace(policy, rollout=new)
        return m

    return change


def update_rollout(action: str, update: PolicyUpdate) -> ChangeFn:
    """Apply ``update`` to the policy and audit the rollout's before/after as ``action``."""
    return update_policy(action, update, audit_default=False)


def update_policy(
    action: str, update: PolicyUpdate, *, moves: Moves | None = None, audit_default: bool = True
) -> ChangeFn:
    """Apply ``update`` to the policy; audit the rollout, the default and each moved tenant.

    ``moves(before, after)`` returns ``(tenant, from, to)`` for every tenant the change moves,
    so each tenant's history shows when a percentage change moved it.
    """

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        after = update(policy)
        m = Mutation()
        if after != policy:
            check_unleash(policy.rollout, after.rollout)
            m.record(action, None, rollout_to_json(policy.rollout), rollout_to_json(after.rollout))
            if audit_default and policy.default != after.default:
                m.record("set-default", None, policy.default, after.default)
            for tenant, old, new in moves(policy, after) if moves is not None else ():
                m.record(action, tenant, old, new)
            m.policy = replace(after, revision=policy.revision)
        return m

    return change

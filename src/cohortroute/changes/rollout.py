"""Change functions for the rollout and the policy as a whole."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import replace

from .._clock import SYSTEM, Clock
from ..policy import (
    begin_rollout,
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
            m.record(action, None, rollout_to_json(policy.rollout), rollout_to_json(after.rollout))
            if audit_default and policy.default != after.default:
                m.record("set-default", None, policy.default, after.default)
            for tenant, old, new in moves(policy, after) if moves is not None else ():
                m.record(action, tenant, old, new)
            m.policy = replace(after, revision=policy.revision)
        return m

    return change

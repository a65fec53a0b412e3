"""``set``: jump a rollout to another percentage, and say who that moved or the ratchet kept.

Raising only ever adds tenants (one audit entry per registered tenant it moves); lowering goes
through the ratchet (:func:`cohortroute.ratchet.lower_percent`), after waiting ``settle`` for
routers to record the tenants they just served.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from .. import ratchet
from ..changes.rollout import check_unleash
from ..errors import ConflictError
from ..policy import parse_percent
from .context import RolloutContext
from .results import PercentChange

log = logging.getLogger(__name__)


def set_percent(ctx: RolloutContext, percent: float | str) -> PercentChange:
    """:meth:`RolloutController.set_percent`: the rollout at ``percent``, and who it moved."""
    points = parse_percent(percent)
    rollout = ctx.require(ctx.store.policy())
    current = rollout.at(ctx.now())
    if points == current.percent:
        return PercentChange(current, current.percent)
    check_unleash(current, replace(current, percent=points))  # before the ratchet marks anyone
    if points > current.percent and current.halted:
        raise ConflictError(
            "the rollout is halted; resume it before raising the percentage "
            "(lowering is allowed while halted)"
        )
    step = ratchet.ramp_step(current.plan, points)
    if points > current.percent:
        moves = ctx.change_percent(rollout, current, points, step, "rollout-set")
        after = ctx.require(ctx.store.policy())
        return PercentChange(after, current.percent, moved=tuple(r.tenant for r in moves))
    if not current.gated and ctx.settle > 0:
        ctx.sleep(ctx.settle)  # let routers record the tenants they just served
    kept = ratchet.lower_percent(
        ctx.store,
        rollout,
        current,
        points,
        step=step,
        now=ctx.now(),
        action="rollout-set",
        actor=ctx.actor,
        chain=ctx.chain,
    )
    return PercentChange(ctx.require(ctx.store.policy()), current.percent, kept=kept)

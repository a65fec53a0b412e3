"""The built-in assignment backends: pin, tag rule and rollout, in the same chain as custom ones.

They read only the stored record and policy, so their answers are cached until the store's
revision moves (``ttl=None``) and they never need a timeout. :data:`PIN`, :data:`TAG` and
:data:`ROLLOUT` are the instances a chain uses; name them in ``assign=[...]`` to place custom
backends between them (see :mod:`cohortroute.assign.chain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bucketing import rollout_bucket
from .backend import Assignment, AssignmentBackend, Query


@dataclass(frozen=True)
class Pin:
    """A tenant pinned to a version gets it."""

    name: str = "pin"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        pin = query.record.pin
        if pin is None:
            return None
        return Assignment(pin, "pin", f"pinned to {pin}")


@dataclass(frozen=True)
class TagRule:
    """The policy's first tag rule matching one of the tenant's tags."""

    name: str = "tag"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        rule = query.policy.rule_for(query.record.tags)
        if rule is None:
            return None
        return Assignment(rule[1], "tag", f"tag {rule[0]} -> {rule[1]}")


@dataclass(frozen=True)
class RolloutBucket:
    """The running rollout: the candidate below the percentage, or kept there by the ratchet.

    A tenant rolled back from this rollout (``held``) has no opinion from it, nor one whose
    bucket is at or above the percentage; the "no opinion" answer still carries the bucket
    and why, which the default decision reports.
    """

    name: str = "rollout"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment:
        rollout = query.rollout
        if rollout is None:
            return Assignment(None, "default", "no rollout running")
        record = query.record
        b = rollout_bucket(rollout, query.tenant)
        candidate = rollout.candidate
        if record.held_salt == rollout.salt:
            detail = f"rolled back from {candidate}; stays on {query.default} for this rollout"
            return Assignment(None, "default", detail, b)
        if b < rollout.percent:
            return Assignment(candidate, "rollout", f"bucket {b} < {rollout.percent} of 10000", b)
        if record.ratchet == candidate:
            detail = (
                f"kept on {candidate} by the ratchet (bucket {b}); only a rollback moves it back"
            )
            return Assignment(candidate, "rollout", detail, b)
        return Assignment(None, "default", f"bucket {b} >= {rollout.percent} of 10000", b)


PIN: AssignmentBackend = Pin()
TAG: AssignmentBackend = TagRule()
ROLLOUT: AssignmentBackend = RolloutBucket()
BUILTINS: tuple[AssignmentBackend, ...] = (PIN, TAG, ROLLOUT)
"""The built-in backends in their default order (the test override always comes first)."""

"""The pure decision: which version one tenant gets, and why.

Precedence is total and documented: **override > pin > tag rule > rollout > default**. A
tenant with no tenant (apex, ``www``, an IP) gets the default with reason ``no-tenant``.
:func:`decide` touches no store and no clock, so the same inputs always give the same answer:
that is what ``explain`` shows and what the router caches.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .bucketing import bucket
from .policy import Policy, TenantRecord


class Reason(str, enum.Enum):
    """Why a request got its version; the values are the names used in docs, CLI and logs."""

    OVERRIDE = "override"
    PIN = "pin"
    TAG = "tag"
    ROLLOUT = "rollout"
    DEFAULT = "default"
    NO_TENANT = "no-tenant"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: ``tenant`` (or None), ``version`` and ``reason``.

    ``bucket`` is the tenant's bucket in the active rollout (None without one) and ``detail``
    a short human explanation, e.g. ``"bucket 412 < 500 (5%)"`` or ``"tag beta"``.
    """

    tenant: str | None
    version: str
    reason: Reason
    bucket: int | None = None
    detail: str = ""


def decide(
    policy: Policy,
    record: TenantRecord | None,
    default: str,
    *,
    override: str | None = None,
) -> Decision:
    """Decide the version for a tenant (``record``; None when the request has no tenant).

    ``default`` is the version to use when the policy names none. The caller checks that the
    chosen version is mounted; this function only applies the precedence.
    """
    tenant = None if record is None else record.name
    if override is not None:
        return Decision(tenant, override, Reason.OVERRIDE, detail="forced by a test override")
    fallback = policy.default or default
    if record is None:
        return Decision(None, fallback, Reason.NO_TENANT, detail="request has no tenant")
    if record.pin is not None:
        return Decision(tenant, record.pin, Reason.PIN, detail=f"pinned to {record.pin}")
    rule = policy.rule_for(record.tags)
    if rule is not None:
        return Decision(tenant, rule[1], Reason.TAG, detail=f"tag {rule[0]} -> {rule[1]}")
    rollout = policy.rollout
    if rollout is not None:
        b = bucket(rollout.salt, record.name)
        if b < rollout.percent:
            return Decision(
                record.name,
                rollout.candidate,
                Reason.ROLLOUT,
                bucket=b,
                detail=f"bucket {b} < {rollout.percent} of 10000",
            )
        if record.ratchet == rollout.candidate:
            return Decision(
                record.name,
                rollout.candidate,
                Reason.ROLLOUT,
                bucket=b,
                detail=f"kept on {rollout.candidate} by the ratchet (bucket {b})",
            )
        return Decision(
            record.name,
            fallback,
            Reason.DEFAULT,
            bucket=b,
            detail=f"bucket {b} >= {rollout.percent} of 10000",
        )
    return Decision(record.name, fallback, Reason.DEFAULT, detail="no rollout running")

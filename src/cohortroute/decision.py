"""The pure decision: which version one tenant gets, and why.

Precedence is total and documented: **override > pin > tag rule > rollout > default**. A
request with no tenant (apex, ``www``, an IP) gets the default with reason ``no-tenant``.
A version the decision names but the router does not mount is replaced by :func:`served`
(reason ``unmounted``).
:func:`decide` touches no store, so the same inputs always give the same answer: that is what
``explain`` shows and what the router caches. The only input that is not an argument is the
clock for a *timed* plan (``Rollout.auto``), and only when the caller passes no ``now``.

Inside the rollout step, in this order:

* a tenant rolled back from this rollout (``held``) stays on the default;
* a tenant whose bucket is below the percentage gets the candidate;
* a tenant whose **ratchet** names the candidate keeps it, even when the percentage was lowered:
  customers never bounce between versions; only an explicit rollback moves them back.

**Migration gating.** When the rollout is ``gated`` (the candidate needs a per-tenant data
migration), the version follows the tenant's *data*, whatever the precedence says: a tenant is
only served the candidate once its data was migrated to it, and a migrated tenant is never sent
back to the old version on new data. While its migration runs (or after one that failed and could
not be undone) the decision carries ``maintenance=True`` and the router answers 503 with
Retry-After.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Collection
from dataclasses import dataclass

from .bucketing import bucket
from .policy import BUSY_STATUSES, Policy, Rollout, TenantRecord


class Reason(str, enum.Enum):
    """Why a request got its version; the values are the names used in docs, CLI and logs."""

    OVERRIDE = "override"
    PIN = "pin"
    TAG = "tag"
    ROLLOUT = "rollout"
    DEFAULT = "default"
    NO_TENANT = "no-tenant"
    UNMOUNTED = "unmounted"
    """The decision named a version this router does not mount: it serves the default instead.

    .. versionadded:: 0.1
    """

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: ``tenant`` (or None), ``version`` and ``reason``.

    ``bucket`` is the tenant's bucket in the active rollout (None without one) and ``detail``
    a short human explanation, e.g. ``"bucket 412 < 500 (5%)"`` or ``"tag beta"``.
    ``maintenance`` is True while the tenant's data is being migrated: the router answers 503
    with Retry-After instead of serving ``version`` (the version its data is at).

    .. versionadded:: 0.1 ``maintenance``.
    """

    tenant: str | None
    version: str
    reason: Reason
    bucket: int | None = None
    detail: str = ""
    maintenance: bool = False


def decide(
    policy: Policy,
    record: TenantRecord | None,
    default: str,
    *,
    override: str | None = None,
    now: float | None = None,
) -> Decision:
    """Decide the version for a tenant (``record``; None when the request has no tenant).

    ``default`` is the version to use when the policy names none. The caller checks that the
    chosen version is mounted; this function only applies the precedence and migration gating.
    ``now`` (Unix time) places a timed plan; the current time when omitted.
    """
    tenant = None if record is None else record.name
    if override is not None:
        return Decision(tenant, override, Reason.OVERRIDE, detail="forced by a test override")
    fallback = policy.default or default
    if record is None:
        return Decision(None, fallback, Reason.NO_TENANT, detail="request has no tenant")
    rollout = policy.rollout
    if rollout is not None and rollout.auto:
        rollout = rollout.at(time.time() if now is None else now)
    wanted = _intended(policy, rollout, record, fallback)
    if rollout is None or not rollout.gated:
        return wanted
    return _gated(rollout, record, fallback, wanted)


def fallback_for(mounted: Collection[str], store_default: str | None, router_default: str) -> str:
    """The version served instead of one that is not mounted: the store's default when it is
    mounted, else the router's own default."""
    return (
        store_default if store_default is not None and store_default in mounted else router_default
    )


def served(
    decision: Decision, mounted: Collection[str], store_default: str | None, router_default: str
) -> Decision:
    """``decision`` as a router mounting ``mounted`` serves it.

    A version it does not mount (retired, mounted only elsewhere, a typo) is replaced by
    :func:`fallback_for`, with reason ``unmounted`` and a detail naming both versions; a request
    with no tenant keeps reason ``no-tenant``. Everything else is returned as it is.
    """
    if decision.version in mounted:
        return decision
    fallback = fallback_for(mounted, store_default, router_default)
    which = "the default" if fallback == store_default else "this router's default"
    return Decision(
        decision.tenant,
        fallback,
        Reason.NO_TENANT if decision.tenant is None else Reason.UNMOUNTED,
        bucket=decision.bucket,
        detail=(
            f"{decision.detail or decision.reason.value}, but {decision.version} is not mounted "
            f"here; {which} {fallback} is served instead"
        ),
        maintenance=decision.maintenance,
    )


def intended(
    policy: Policy,
    record: TenantRecord,
    default: str,
    *,
    now: float | None = None,
) -> Decision:
    """The decision before migration gating: where the precedence wants the tenant to be.

    The migration runner moves a tenant's data when this names the gated candidate while
    :func:`decide` still serves the old version; ``preview`` compares it step to step.
    """
    rollout = policy.rollout
    if rollout is not None and rollout.auto:
        rollout = rollout.at(time.time() if now is None else now)
    return _intended(policy, rollout, record, policy.default or default)


def _intended(
    policy: Policy, rollout: Rollout | None, record: TenantRecord, fallback: str
) -> Decision:
    name = record.name
    if record.pin is not None:
        return Decision(name, record.pin, Reason.PIN, detail=f"pinned to {record.pin}")
    rule = policy.rule_for(record.tags)
    if rule is not None:
        return Decision(name, rule[1], Reason.TAG, detail=f"tag {rule[0]} -> {rule[1]}")
    if rollout is None:
        return Decision(name, fallback, Reason.DEFAULT, detail="no rollout running")
    b = bucket(rollout.salt, name)
    if record.held_salt == rollout.salt:
        return Decision(
            name,
            fallback,
            Reason.DEFAULT,
            bucket=b,
            detail=f"rolled back from {rollout.candidate}; stays on {fallback} for this rollout",
        )
    if b < rollout.percent:
        return Decision(
            name,
            rollout.candidate,
            Reason.ROLLOUT,
            bucket=b,
            detail=f"bucket {b} < {rollout.percent} of 10000",
        )
    if record.ratchet == rollout.candidate:
        return Decision(
            name,
            rollout.candidate,
            Reason.ROLLOUT,
            bucket=b,
            detail=(
                f"kept on {rollout.candidate} by the ratchet (bucket {b}); "
                "only a rollback moves it back"
            ),
        )
    return Decision(
        name,
        fallback,
        Reason.DEFAULT,
        bucket=b,
        detail=f"bucket {b} >= {rollout.percent} of 10000",
    )


def _gated(rollout: Rollout, record: TenantRecord, fallback: str, wanted: Decision) -> Decision:
    """Make the decision follow the tenant's data in a rollout that needs migrations."""
    candidate = rollout.candidate
    migrated = record.data_version == candidate
    status = record.migration_status
    if status in BUSY_STATUSES:
        if status == "migrating":
            detail = "its data is being migrated; retry shortly"
        else:
            detail = (
                "its last migration failed and could not be undone: repair its data, then "
                "`cohortroute rollout run` (or `rollout rollback --tenant` with --force)"
            )
        return Decision(
            record.name,
            candidate if migrated else fallback,
            Reason.ROLLOUT if migrated else Reason.DEFAULT,
            bucket=wanted.bucket,
            detail=detail,
            maintenance=True,
        )
    if wanted.version == candidate and not migrated:
        return Decision(
            record.name,
            fallback,
            Reason.DEFAULT,
            bucket=wanted.bucket,
            detail=(
                f"{wanted.detail}, but its data is not migrated to {candidate} yet; "
                "`cohortroute rollout run` migrates it"
            ),
        )
    if wanted.version != candidate and migrated:
        return Decision(
            record.name,
            candidate,
            Reason.ROLLOUT,
            bucket=wanted.bucket,
            detail=(
                f"its data is migrated to {candidate}, so it stays there until "
                "`cohortroute rollout rollback` moves it back"
            ),
        )
    if migrated and wanted.reason is Reason.ROLLOUT:
        return Decision(
            record.name,
            candidate,
            Reason.ROLLOUT,
            bucket=wanted.bucket,
            detail=f"{wanted.detail}; data migrated to {candidate}",
        )
    return wanted

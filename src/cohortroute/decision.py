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
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .policy import BUSY_STATUSES, Policy, Rollout, TenantRecord

if TYPE_CHECKING:
    from .assign.chain import Chain


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

    BACKEND = "backend"
    """A custom assignment backend decided (``Decision.backend`` names it).

    .. versionadded:: 0.2
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

    ``backend`` names the assignment backend that decided (``pin``, ``tag``, ``rollout``, a
    custom backend's name, ``override`` or ``default``; empty with no tenant), and ``errors``
    the backends that failed and were skipped on the way (``"name: what went wrong"``).

    .. versionadded:: 0.1 ``maintenance``.
    .. versionadded:: 0.2 ``backend`` and ``errors``.
    """

    tenant: str | None
    version: str
    reason: Reason
    bucket: int | None = None
    detail: str = ""
    maintenance: bool = False
    # Not compared: they say how the answer was reached, not what it is.
    backend: str = field(default="", compare=False)
    errors: tuple[str, ...] = field(default=(), compare=False)


def decide(
    policy: Policy,
    record: TenantRecord | None,
    default: str,
    *,
    override: str | None = None,
    now: float | None = None,
    chain: Chain | None = None,
) -> Decision:
    """Decide the version for a tenant (``record``; None when the request has no tenant).

    ``default`` is the version to use when the policy names none. The caller checks that the
    chosen version is mounted; this function only applies the precedence and migration gating.
    ``now`` (Unix time) places a timed plan; the current time when omitted. ``chain`` holds the
    assignment backends (:class:`cohortroute.assign.Chain`); the built-ins when omitted.

    .. versionadded:: 0.2 ``chain``.
    """
    if chain is None:
        from .assign.chain import DEFAULT_CHAIN

        chain = DEFAULT_CHAIN
    at = time.time() if now is None else now
    return chain.decide(policy, record, default, override=override, now=at).decision


def fallback_for(mounted: Collection[str], store_default: str | None, router_default: str) -> str:
    """The version served instead of one that is not mounted: the store's default when it is
    mounted, else the router's own default."""
    return (
        store_default if store_default is not None and store_default in mounted else router_default
    )


_NOTE = re.compile(r"(?:^|; )(request-aware backends? .+ may override it per request)$")


def per_request_note(names: Sequence[str]) -> str:
    """The note ending the detail of a decision that request-aware backends ``names`` (ranked
    above the one that decided) may override per request."""
    plural = "s" if len(names) > 1 else ""
    return f"request-aware backend{plural} {', '.join(names)} may override it per request"


def split_note(detail: str) -> tuple[str, str]:
    """``detail`` without its :func:`per_request_note`, and that note ("" when it has none), so
    what decided and what may still change it per request can be said apart."""
    found = _NOTE.search(detail)
    if found is None:
        return detail, ""
    return detail[: found.start()], found.group(1)


def served(
    decision: Decision, mounted: Collection[str], store_default: str | None, router_default: str
) -> Decision:
    """``decision`` as a router mounting ``mounted`` serves it.

    A version it does not mount (retired, mounted only elsewhere, a typo) is replaced by
    :func:`fallback_for`, with reason ``unmounted`` and a detail naming both versions (and the
    assignment backend that named it); a request with no tenant keeps reason ``no-tenant``. A
    note that request-aware backends may override it per request stays last, as it applies to
    the version served. Everything else is returned as it is.
    """
    if decision.version in mounted:
        return decision
    fallback = fallback_for(mounted, store_default, router_default)
    which = "the default" if fallback == store_default else "this router's default"
    said, note = split_note(decision.detail)
    why = said or decision.reason.value
    if decision.reason is Reason.BACKEND and decision.backend:
        why = f"assignment backend {decision.backend} answered {decision.version} ({why})"
    detail = (
        f"{why}, but {decision.version} is not mounted here; {which} {fallback} is served instead"
    )
    return Decision(
        decision.tenant,
        fallback,
        Reason.NO_TENANT if decision.tenant is None else Reason.UNMOUNTED,
        bucket=decision.bucket,
        detail=f"{detail}; {note}" if note else detail,
        maintenance=decision.maintenance,
        backend=decision.backend,
        errors=decision.errors,
    )


def intended(
    policy: Policy,
    record: TenantRecord,
    default: str,
    *,
    now: float | None = None,
    chain: Chain | None = None,
) -> Decision:
    """The decision before migration gating: where the precedence wants the tenant to be.

    The migration runner moves a tenant's data when this names the gated candidate while
    :func:`decide` still serves the old version; ``preview`` compares it step to step.
    """
    if chain is None:
        from .assign.chain import DEFAULT_CHAIN

        chain = DEFAULT_CHAIN
    at = time.time() if now is None else now
    return chain.intended(policy, record, default, now=at).decision


def gated(rollout: Rollout, record: TenantRecord, fallback: str, wanted: Decision) -> Decision:
    """``wanted`` made to follow the tenant's data in a rollout that needs migrations."""
    result = _gated(rollout, record, fallback, wanted)
    if result is wanted:
        return wanted
    backend = "rollout" if result.reason is Reason.ROLLOUT else "default"
    return replace(result, backend=backend, errors=wanted.errors)


def _gated(rollout: Rollout, record: TenantRecord, fallback: str, wanted: Decision) -> Decision:
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

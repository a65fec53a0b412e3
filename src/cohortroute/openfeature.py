"""An OpenFeature provider whose flags agree with routing (`cohortroute[openfeature]` extra).

A flag here is a value per version: ``{"new-checkout": {"2026.11": False, "2026.12": True}}``.
It resolves to the value of the version the tenant is served, so code that asks a flag inside a
version never disagrees with the router that chose that version. The OpenFeature reason says why:
``TARGETING_MATCH`` for a pin, a tag rule or an assignment backend, ``SPLIT`` for the rollout,
``DEFAULT`` for the default (and for a tenant-less or unmounted decision), ``STATIC`` for a test
override; the variant is the version's name::

    from openfeature import api
    from cohortroute.openfeature import CohortRouteProvider, context_for

    api.set_provider(CohortRouteProvider(router, {"new-checkout": {"2026.12": True}}))
    flags = api.get_client()

    # inside a request: the decision the router made for it, so both always agree
    decision = environ["cohortroute.decision"]          # scope[...] under ASGI
    flags.get_boolean_value("new-checkout", False, context_for(decision))

    # anywhere else: the targeting key is the tenant, decided now (``router.explain``)
    flags.get_boolean_value("new-checkout", False, EvaluationContext("acme"))

A version the flag does not name gets the caller's default value (reason ``DEFAULT``); an
unknown flag is ``FLAG_NOT_FOUND``, a value of the wrong type ``TYPE_MISMATCH`` and a targeting
key that is not a tenant's name (a full host, say) ``INVALID_CONTEXT``, all with the caller's
default, as the specification asks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as FlagReason
from openfeature.provider import AbstractProvider, Metadata

from .decision import Decision, Reason
from .errors import ValidationError

log = logging.getLogger(__name__)

VERSION = "cohortroute.version"
"""Evaluation-context attribute: the version the router decided (set by :func:`context_for`)."""
REASON = "cohortroute.reason"
"""Evaluation-context attribute: the decision's reason (``pin``, ``rollout``, ...)."""

_REASONS = {
    Reason.PIN: FlagReason.TARGETING_MATCH,
    Reason.TAG: FlagReason.TARGETING_MATCH,
    Reason.BACKEND: FlagReason.TARGETING_MATCH,
    Reason.ROLLOUT: FlagReason.SPLIT,
    Reason.OVERRIDE: FlagReason.STATIC,
    Reason.DEFAULT: FlagReason.DEFAULT,
    Reason.NO_TENANT: FlagReason.DEFAULT,
    Reason.UNMOUNTED: FlagReason.DEFAULT,
}

T = TypeVar("T")


class Explains(Protocol):
    """What the provider needs of a router (or a :class:`~cohortroute.RolloutController`)."""

    def explain(self, tenant: str) -> Decision: ...


def context_for(decision: Decision) -> EvaluationContext:
    """The evaluation context that resolves flags from ``decision`` (a request's own)."""
    return EvaluationContext(
        decision.tenant, {VERSION: decision.version, REASON: decision.reason.value}
    )


def flag_reason(reason: Reason | str) -> str:
    """The OpenFeature reason for a cohortroute decision's reason (``UNKNOWN`` for a new one)."""
    try:
        known = Reason(reason)
    except ValueError:
        return str(FlagReason.UNKNOWN)
    return str(_REASONS.get(known, FlagReason.UNKNOWN))


class CohortRouteProvider(AbstractProvider):
    """Resolve flags from the version a tenant is served.

    :param router: answers ``explain(tenant)``; asked only when the evaluation context does not
        carry a decision (see :func:`context_for`).
    :param flags: flag key -> {version -> value}.
    """

    def __init__(self, router: Explains, flags: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self._router = router
        self._flags = {key: dict(values) for key, values in flags.items()}

    def get_metadata(self) -> Metadata:
        return Metadata(name="cohortroute")

    def _decided(self, context: EvaluationContext | None) -> tuple[str, str] | None:
        """(version, cohortroute reason) from the context, or decided now for its tenant."""
        attributes = context.attributes if context is not None else {}
        version, reason = attributes.get(VERSION), attributes.get(REASON)
        if isinstance(version, str) and isinstance(reason, str):
            return version, reason
        if context is None or not context.targeting_key:
            return None
        decision = self._router.explain(context.targeting_key)
        return decision.version, decision.reason.value

    def _resolve(
        self, key: str, default: T, kind: type | tuple[type, ...], context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        values = self._flags.get(key)
        if values is None:
            return FlagResolutionDetails(
                default,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"no flag {key!r}: cohortroute knows {sorted(self._flags)}",
                reason=FlagReason.ERROR,
            )
        try:
            decided = self._decided(context)
        except ValidationError as error:
            # A host ("acme.example.com") or any other non-tenant as the targeting key.
            return FlagResolutionDetails(
                default,
                error_code=ErrorCode.INVALID_CONTEXT,
                error_message=f"{error}; pass the tenant's name as the targeting key",
                reason=FlagReason.ERROR,
            )
        if decided is None:
            # No tenant: served the default version, whose value (if any) is not known here.
            return FlagResolutionDetails(default, reason=FlagReason.DEFAULT)
        version, reason = decided
        if version not in values:
            return FlagResolutionDetails(default, reason=FlagReason.DEFAULT, variant=version)
        value = values[version]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return FlagResolutionDetails(
                default,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {key!r} holds {type(value).__name__} for {version}",
                reason=FlagReason.ERROR,
            )
        return FlagResolutionDetails(
            cast(T, value),  # its type was checked against the caller's just above
            reason=flag_reason(reason),
            variant=version,
            flag_metadata={"cohortroute.reason": reason},
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, bool, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, str, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, int, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, (float, int), evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, (list, dict), evaluation_context)


__all__ = ["REASON", "VERSION", "CohortRouteProvider", "Explains", "context_for", "flag_reason"]

"""How records are stored: one codec per record type, and the one error for corrupt state.

Every backend writes the policy, a tenant record and an audit entry as the same canonical
JSON (sorted keys, no spaces), and reads them back through :class:`Codec`, which turns anything
that is not a record of the right shape -- invalid JSON, a list where an object belongs, a field
of the wrong type -- into one :class:`~cohortroute.errors.StoreError` (made by
:meth:`Codec.corrupt`) that names the store and the place and says what to do. A bare
``AttributeError`` or ``TypeError`` from stored garbage never reaches the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..errors import StoreError, quoted
from ..policy import (
    AuditEntry,
    Policy,
    TenantRecord,
    audit_from_json,
    audit_to_json,
    policy_from_json,
    policy_to_json,
    tenant_from_json,
    tenant_to_json,
)

log = logging.getLogger(__name__)

# What a decoder raises on a record of the wrong shape.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)

#: Said when nothing more specific to the backend applies.
RESTORE = (
    "Another program may have written there, or the data is damaged: restore it from a backup "
    "(the audit log shows what it held), or point the store URL at another location."
)


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, so equal records are equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def encode_policy(policy: Policy) -> str:
    """The policy as stored (without its revision, which stores keep apart)."""
    return dumps(policy_to_json(policy))


def encode_tenant(record: TenantRecord) -> str:
    """A tenant record as stored (without its name, which stores use as the key)."""
    return dumps(tenant_to_json(record))


def encode_audit(entry: AuditEntry) -> str:
    """An audit entry as stored."""
    return dumps(audit_to_json(entry))


class Codec:
    """Reads one store's records, naming the store (``the Redis store at redis://...``) in errors.

    ``advice`` is what the error tells the operator to do; backends add their own hint (a
    different key prefix, schema...).
    """

    def __init__(self, store: str, advice: str = RESTORE) -> None:
        self.store = store
        self.advice = advice

    def corrupt(self, where: str, problem: str, cause: BaseException | None = None) -> StoreError:
        """The error for unreadable stored state at ``where`` (the original chained)."""
        error = StoreError(
            f"{self.store} holds unreadable data in {where}: {problem}. {self.advice}"
        )
        error.__cause__ = cause
        return error

    def loads(self, raw: str | bytes, where: str) -> Any:
        """Parse stored JSON text."""
        try:
            return json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self.corrupt(where, "not valid JSON", exc) from exc

    def _object(self, data: Any, where: str) -> Mapping[str, Any] | None:
        if data is None or isinstance(data, Mapping):
            return data
        raise self.corrupt(where, f"expected a JSON object, got {quoted(data, 80)}")

    def policy(self, data: Any, revision: int, where: str) -> Policy:
        """A policy from its parsed JSON (None = the empty policy)."""
        try:
            return policy_from_json(self._object(data, where), revision)
        except _SHAPE_ERRORS as exc:
            raise self.corrupt(where, f"not a policy ({exc!r})", exc) from exc

    def tenant(self, name: str, data: Any, where: str) -> TenantRecord:
        """A tenant record from its parsed JSON (None = the empty record)."""
        try:
            return tenant_from_json(name, self._object(data, where))
        except _SHAPE_ERRORS as exc:
            raise self.corrupt(where, f"not a tenant record ({exc!r})", exc) from exc

    def audit(self, data: Any, where: str) -> AuditEntry:
        """An audit entry from its parsed JSON."""
        try:
            entry = self._object(data, where)
            if entry is None:
                raise ValueError("null")
            return audit_from_json(entry)
        except _SHAPE_ERRORS as exc:
            raise self.corrupt(where, f"not an audit entry ({exc!r})", exc) from exc

    def policy_text(self, raw: str | bytes | None, revision: int, where: str) -> Policy:
        """A policy from its stored JSON text (None = the empty policy)."""
        return self.policy(None if raw is None else self.loads(raw, where), revision, where)

    def tenant_text(self, name: str, raw: str | bytes | None, where: str) -> TenantRecord:
        """A tenant record from its stored JSON text (None = the empty record)."""
        return self.tenant(name, None if raw is None else self.loads(raw, where), where)

    def audit_text(self, raw: str | bytes, where: str) -> AuditEntry:
        """An audit entry from its stored JSON text."""
        return self.audit(self.loads(raw, where), where)

    def revision(self, raw: Any, where: str) -> int:
        """A stored revision: a non-negative integer (None, an absent one, is 0)."""
        if raw is None:
            return 0
        if isinstance(raw, bytes | str):
            try:
                raw = int(raw)
            except ValueError as exc:
                raise self.corrupt(where, f"not an integer: {quoted(raw, 80)}", exc) from exc
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
            raise self.corrupt(where, f"revision {quoted(raw, 80)}")
        return raw

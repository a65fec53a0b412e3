"""The change-function machinery: what a change reads (StateReader), what it returns (Mutation),
and the helpers every change function shares."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import versions
from ..errors import ConflictError
from ..policy import (
    AuditEntry,
    Policy,
    Rollout,
    TenantRecord,
    tenant_to_json,
)

log = logging.getLogger(__name__)


class StateReader(abc.ABC):
    """What a change function sees: the state as of the transaction it runs in.

    Backends subclass it (or pass their read functions to :class:`FunctionReader`).
    """

    @abc.abstractmethod
    def policy(self) -> Policy:
        """The global policy inside the transaction."""

    @abc.abstractmethod
    def tenant(self, name: str) -> TenantRecord:
        """One tenant's record inside the transaction (an empty record when unknown)."""

    def tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        """Many tenants' records at once; backends override it to read them in one query."""
        return {name: self.tenant(name) for name in names}


class FunctionReader(StateReader):
    """A :class:`StateReader` made of the backend's read functions for one transaction."""

    def __init__(
        self,
        policy: Policy | Callable[[], Policy],
        tenant: Callable[[str], TenantRecord],
        tenants: Callable[[Sequence[str]], dict[str, TenantRecord]] | None = None,
    ) -> None:
        self._policy, self._tenant, self._tenants = policy, tenant, tenants

    def policy(self) -> Policy:
        return self._policy if isinstance(self._policy, Policy) else self._policy()

    def tenant(self, name: str) -> TenantRecord:
        return self._tenant(name)

    def tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        if self._tenants is None:
            return super().tenants(names)
        return self._tenants(names)


@dataclass
class Mutation:
    """The outcome of a change function: records to write and the audit entries explaining them."""

    policy: Policy | None = None
    tenants: dict[str, TenantRecord] = field(default_factory=dict)
    changes: list[tuple[str, str | None, Any, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def record(self, action: str, tenant: str | None, before: Any, after: Any) -> None:
        """Add one audit entry to write with this mutation."""
        self.changes.append((action, tenant, before, after))

    def audit(self, revision: int, actor: str, at: float) -> list[AuditEntry]:
        """The audit entries, stamped with the revision, actor and time of the commit."""
        return [
            AuditEntry(revision, at, actor, action, tenant, before, after)
            for action, tenant, before, after in self.changes
        ]


ChangeFn = Callable[[StateReader], Mutation]
PolicyUpdate = Callable[[Policy], Policy]
TenantUpdate = Callable[[TenantRecord, Policy], TenantRecord]
Describe = Callable[[TenantRecord, TenantRecord], tuple[Any, Any]]
Moves = Callable[[Policy, Policy], Iterable[tuple[str, Any, Any]]]


# --- helpers --------------------------------------------------------------------------------------


def tenant_change(
    before: TenantRecord, after: TenantRecord, action: str, old: Any, new: Any
) -> Mutation:
    """The mutation writing one tenant's record, or an empty one when nothing changed."""
    m = Mutation()
    if after != before:
        m.tenants[after.name] = after
        m.record(action, after.name, old, new)
    return m


def summary(record: TenantRecord) -> dict[str, Any]:
    """A tenant record as an audit entry shows it: its stored form."""
    return tenant_to_json(record)


def require_rollout(policy: Policy) -> Rollout:
    """The running rollout; ConflictError when there is none."""
    if policy.rollout is None:
        raise ConflictError(
            "no rollout is running; start one with `cohortroute rollout start VERSION`"
        )
    return policy.rollout


def _describe(before: TenantRecord, after: TenantRecord) -> tuple[Any, Any]:
    return summary(before), summary(after)


def _rule_text(tag: str, version: str | None) -> str | None:
    return None if version is None else f"{tag} -> {version}"


def _require_known(policy: Policy, version: str) -> None:
    versions.check_serving(policy, version)  # known, and not retired

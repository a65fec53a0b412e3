"""The in-memory store: state in this process only, for tests and single-process demos.

Each ``memory://`` URL opens a new, independent store -- nothing is global, so two routers
never share state by accident. Records are stored as their JSON shapes, exactly like the
persistent backends, so the state round-trips the same way everywhere.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigurationError
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
from .base import ChangeFn, StateReader, Store


class _Reader(StateReader):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def policy(self) -> Policy:
        return self._store.policy()

    def tenant(self, name: str) -> TenantRecord:
        return self._store.tenant(name)


class MemoryStore(Store, scheme="memory"):
    """State held in this process; ``memory://`` (nothing after the scheme)."""

    refresh_interval = 1.0  # every write is local, and local writes notify routers at once

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._revision = 0
        self._policy: str | None = None
        self._tenants: dict[str, str] = {}
        self._audit: list[str] = []

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        if url.rstrip("/") != "memory:":
            raise ConfigurationError(
                f"the memory store takes no location: use 'memory://', not {url!r}"
            )
        return cls()

    def revision(self) -> int:
        return self._revision

    def policy(self) -> Policy:
        with self._lock:
            data = None if self._policy is None else json.loads(self._policy)
            return policy_from_json(data, self._revision)

    def tenant(self, name: str) -> TenantRecord:
        raw = self._tenants.get(name)
        return tenant_from_json(name, None if raw is None else json.loads(raw))

    def tenants(self) -> Iterator[TenantRecord]:
        with self._lock:
            items = sorted(self._tenants.items())
        for name, raw in items:
            yield tenant_from_json(name, json.loads(raw))

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        with self._lock:
            entries = [audit_from_json(json.loads(raw)) for raw in reversed(self._audit)]
        if tenant is not None:
            entries = [e for e in entries if e.tenant == tenant]
        return entries[:limit]

    def _commit(self, change: ChangeFn, actor: str) -> int:
        with self._lock:
            mutation = change(_Reader(self))
            if not mutation:
                return self._revision
            revision = self._revision + 1
            if mutation.policy is not None:
                self._policy = _dump(policy_to_json(mutation.policy))
            for name, record in mutation.tenants.items():
                if record.is_empty():
                    self._tenants.pop(name, None)
                else:
                    self._tenants[name] = _dump(tenant_to_json(record))
            for entry in mutation.audit(revision, actor, time.time()):
                self._audit.append(_dump(audit_to_json(entry)))
            self._revision = revision
            return revision


def _dump(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))

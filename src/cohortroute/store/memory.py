"""The in-memory store: state in this process only, for tests and single-process demos.

Each ``memory://`` URL opens a new, independent store -- nothing is global, so two routers
never share state by accident. Records are stored as their JSON text, exactly like the
persistent backends, so the state round-trips the same way everywhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from ..errors import ConfigurationError
from ..policy import AuditEntry, Policy, TenantRecord
from ._codec import Codec, encode_audit, encode_policy, encode_tenant
from .base import ChangeFn, FunctionReader, Store

log = logging.getLogger(__name__)


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
        self._codec = Codec("the memory store")

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        if url.rstrip("/") != "memory:":
            raise ConfigurationError(
                f"the memory store takes no location: use 'memory://', not {url!r}"
            )
        return cls()

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._lock = threading.RLock()

    def revision(self) -> int:
        return self._revision

    def policy(self) -> Policy:
        with self._lock:
            raw, revision = self._policy, self._revision
        return self._codec.policy_text(raw, revision, "the policy")

    def tenant(self, name: str) -> TenantRecord:
        return self._decode_tenant(name, self._tenants.get(name))

    def _decode_tenant(self, name: str, raw: str | None) -> TenantRecord:
        return self._codec.tenant_text(name, raw, f"the record of tenant {name!r}")

    def tenants(self) -> Iterator[TenantRecord]:
        with self._lock:
            items = sorted(self._tenants.items())
        for name, raw in items:
            yield self._decode_tenant(name, raw)

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        with self._lock:
            raws = list(reversed(self._audit))
        entries = [self._codec.audit_text(raw, "the audit log") for raw in raws]
        if tenant is not None:
            entries = [e for e in entries if e.tenant == tenant]
        return entries[: max(limit, 0)]

    def commit(self, change: ChangeFn, actor: str) -> int:
        with self._lock:
            mutation = change(FunctionReader(self.policy, self.tenant))
            if not mutation:
                return self._revision
            revision = self._revision + 1
            if mutation.policy is not None:
                self._policy = encode_policy(mutation.policy)
            for name, record in mutation.tenants.items():
                if record.is_empty():
                    self._tenants.pop(name, None)
                else:
                    self._tenants[name] = encode_tenant(record)
            self._audit.extend(
                encode_audit(e) for e in mutation.audit(revision, actor, self.clock.time())
            )
            self._revision = revision
            return revision

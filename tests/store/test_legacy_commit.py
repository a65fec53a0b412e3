"""A backend written before ``Store.commit`` was public (it implements ``_commit``) still works."""

from __future__ import annotations

from collections.abc import Iterator

from cohortroute.policy import AuditEntry, Policy, TenantRecord
from cohortroute.store import ChangeFn, MemoryStore, Mutation, StateReader, Store


class LegacyStore(Store):
    """Implements the old private primitive only, over a memory store."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = MemoryStore()
        self.commits = 0

    @classmethod
    def from_url(cls, url: str) -> LegacyStore:
        return cls()

    def revision(self) -> int:
        return self.inner.revision()

    def policy(self) -> Policy:
        return self.inner.policy()

    def tenant(self, name: str) -> TenantRecord:
        return self.inner.tenant(name)

    def tenants(self) -> Iterator[TenantRecord]:
        return self.inner.tenants()

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        return self.inner.history(tenant, limit)

    def _commit(self, change: ChangeFn, actor: str) -> int:
        self.commits += 1
        return self.inner.commit(change, actor)


def test_a_store_implementing_only_the_old_commit_is_usable() -> None:
    # Not abstract at run time: commit() is served by _commit() (beyond what mypy can see).
    store = LegacyStore()  # type: ignore[abstract]
    assert store.register_versions(["1", "2"], default="1", actor="ops") == 1
    assert store.pin("acme", "2") == 2
    assert store.commits == 2
    assert store.tenant("acme").pin == "2"
    assert store.history(limit=1)[0].action == "pin"


def test_the_old_name_still_runs_a_new_store_s_commit() -> None:
    store = MemoryStore()
    store.register_versions(["1"], default="1")

    def nothing(state: StateReader) -> Mutation:
        return Mutation()

    assert store._commit(nothing, "x") == 1

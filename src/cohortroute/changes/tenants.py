"""Change functions for tenants: pins, tags, batched updates, the registry, tenant-list imports."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._clock import SYSTEM, Clock
from ..policy import (
    STATE_REGISTERED,
    Policy,
    TenantRecord,
    check_tag_name,
    check_tenant_name,
)
from .base import (
    ChangeFn,
    Describe,
    Mutation,
    StateReader,
    TenantUpdate,
    _describe,
    _require_known,
    summary,
    tenant_change,
)

log = logging.getLogger(__name__)


# --- one tenant -----------------------------------------------------------------------------------


def pin(tenant: str, version: str) -> ChangeFn:
    """Pin a tenant to a version; a pin beats tag rules and the rollout."""
    name = check_tenant_name(tenant)

    def change(state: StateReader) -> Mutation:
        _require_known(state.policy(), version)
        record = state.tenant(name)
        return tenant_change(record, replace(record, pin=version), "pin", record.pin, version)

    return change


def unpin(tenant: str) -> ChangeFn:
    """Remove a tenant's pin (a no-op when it has none)."""
    name = check_tenant_name(tenant)

    def change(state: StateReader) -> Mutation:
        record = state.tenant(name)
        return tenant_change(record, replace(record, pin=None), "unpin", record.pin, None)

    return change


def tag(tenant: str, label: str) -> ChangeFn:
    """Add a tag to a tenant."""
    return _retag(tenant, label, "tag")


def untag(tenant: str, label: str) -> ChangeFn:
    """Remove a tag from a tenant (a no-op when it does not carry it)."""
    return _retag(tenant, label, "untag")


def _retag(tenant: str, label: str, action: str) -> ChangeFn:
    name, checked = check_tenant_name(tenant), check_tag_name(label)

    def change(state: StateReader) -> Mutation:
        record = state.tenant(name)
        tags = record.tags | {checked} if action == "tag" else record.tags - {checked}
        after = replace(record, tags=tags)
        return tenant_change(record, after, action, sorted(record.tags), sorted(after.tags))

    return change


def update_tenant(tenant: str, action: str, update: TenantUpdate) -> ChangeFn:
    """Apply ``update`` to one tenant's record and audit it as ``action``."""
    name = check_tenant_name(tenant)

    def change(state: StateReader) -> Mutation:
        record = state.tenant(name)
        after = update(record, state.policy())
        return tenant_change(record, after, action, summary(record), summary(after))

    return change


# --- many tenants ---------------------------------------------------------------------------------


def update_tenants(
    names: Sequence[str],
    action: str,
    update: TenantUpdate,
    *,
    describe: Describe | None = None,
    audit_each: bool = True,
) -> ChangeFn:
    """Apply ``update`` to each of ``names`` (already checked) in one transaction.

    With ``audit_each`` every changed tenant gets its own audit entry (``describe(before,
    after)``, the whole record by default); without it one summary entry.
    """

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        m = Mutation()
        records = state.tenants(names)
        for name in names:
            record = records[name]
            after = update(record, policy)
            if after == record:
                continue
            m.tenants[name] = after
            if audit_each:
                old, new = (describe or _describe)(record, after)
                m.record(action, name, old, new)
        if m.tenants and not audit_each:
            m.record(action, None, None, {"tenants": len(m.tenants)})
        return m

    return change


def check_tenants(tenants: Iterable[str]) -> list[str]:
    """Tenant names checked and without duplicates, in their first order."""
    return list(dict.fromkeys(check_tenant_name(t) for t in tenants))


def registration(
    tags: Mapping[str, Iterable[str]] | None, new: set[str], clock: Clock = SYSTEM
) -> tuple[TenantUpdate, Describe]:
    """The update and audit description that register tenants (adding ``tags``).

    Names registered for the first time are added to ``new``.
    """
    labels = {
        check_tenant_name(name): frozenset(check_tag_name(t) for t in values)
        for name, values in (tags or {}).items()
    }

    def update(record: TenantRecord, policy: Policy) -> TenantRecord:
        added = labels.get(record.name, frozenset())
        if record.registered and added <= record.tags:
            return record
        state = dict(record.state)
        if not record.registered:
            state[STATE_REGISTERED] = clock.time()
            new.add(record.name)
        return replace(record, tags=record.tags | added, state=state)

    def describe(before: TenantRecord, after: TenantRecord) -> tuple[Any, Any]:
        return None, {"tags": sorted(after.tags), "registered": after.state.get(STATE_REGISTERED)}

    return update, describe


# --- importing tenants ----------------------------------------------------------------------------


@dataclass
class ImportCounts:
    """What an import changed: tenants new to the registry, tags added and removed.

    ``retagged`` names every tenant whose tags the import changed (new tenants included);
    ``listed`` is how many distinct tenants the import named.
    """

    new: set[str] = field(default_factory=set)
    retagged: set[str] = field(default_factory=set)
    tags_added: int = 0
    tags_removed: int = 0
    listed: int = 0

    def add(self, other: ImportCounts) -> None:
        """Add another batch's counts to these."""
        self.new |= other.new
        self.retagged |= other.retagged
        self.tags_added += other.tags_added
        self.tags_removed += other.tags_removed


def import_tenants(
    names: Sequence[str],
    tags: Mapping[str, Iterable[str]],
    *,
    replace_tags: bool,
    counts: ImportCounts,
    clock: Clock = SYSTEM,
) -> ChangeFn:
    """Register ``names`` (already checked) and set their tags from an import, in one transaction.

    Tags are added to what a tenant carries, or with ``replace_tags`` become exactly the file's
    (a tenant listed without tags loses its own). Every tenant whose tags change gets its own
    ``tags-import`` audit entry (before/after tag lists), so ``history TENANT`` shows it; the
    tenants that are only new to the registry share one ``tenants-register`` summary entry.
    ``counts`` receives what this batch changed (set afresh by each run, so a transaction
    the store retries is not counted twice): add it to the import's total once committed.
    """
    wanted = {name: frozenset(check_tag_name(t) for t in tags.get(name, ())) for name in names}

    def change(state: StateReader) -> Mutation:
        m = Mutation()
        batch = ImportCounts()
        for name, record in state.tenants(names).items():
            labels = wanted[name] if replace_tags else record.tags | wanted[name]
            after = replace(record, tags=labels)
            if not record.registered:
                after = replace(after, state={**record.state, STATE_REGISTERED: clock.time()})
                batch.new.add(name)
            if after == record:
                continue
            m.tenants[name] = after
            if labels != record.tags:
                batch.retagged.add(name)
                batch.tags_added += len(labels - record.tags)
                batch.tags_removed += len(record.tags - labels)
                m.record("tags-import", name, sorted(record.tags), sorted(labels))
        if batch.new:
            m.record("tenants-register", None, None, {"tenants": len(batch.new)})
        counts.new, counts.retagged = batch.new, batch.retagged
        counts.tags_added, counts.tags_removed = batch.tags_added, batch.tags_removed
        return m

    return change

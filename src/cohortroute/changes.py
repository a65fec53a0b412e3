"""Every state operation, written once as a pure change function.

Each function here checks its arguments at once (so a malformed one fails before any store is
touched) and returns a :data:`~cohortroute.store.base.ChangeFn`: given the state of a
transaction, it says what to write as a :class:`~cohortroute.store.base.Mutation`, and reads
nothing but its argument, so a store may run it again on fresh state. Every backend applies it
through :meth:`Store.commit <cohortroute.store.base.Store.commit>` (:meth:`Store.write
<cohortroute.store.base.Store.write>` also tells subscribers), so validation and audit
entries are identical on memory, SQLite, Redis, PostgreSQL and custom stores::

    store.write(changes.pin("acme", "2026.12"), actor="ops")

The :class:`~cohortroute.store.base.Store` methods are thin wrappers over these.
"""

from __future__ import annotations

import abc
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import versions
from ._clock import SYSTEM, Clock
from .errors import ConflictError, UnknownVersionError
from .policy import (
    STATE_REGISTERED,
    AuditEntry,
    Policy,
    Rollout,
    TenantRecord,
    begin_rollout,
    check_tag_name,
    check_tenant_name,
    check_version_name,
    parse_percent,
    parse_plan,
    rollout_to_json,
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


# --- versions and rules ---------------------------------------------------------------------------


def register_versions(versions: Iterable[str], default: str | None = None) -> ChangeFn:
    """Record versions as known; make ``default`` the default if the store has none yet."""
    names = list(dict.fromkeys(check_version_name(v) for v in versions))
    if default is not None and default not in names:
        names.append(check_version_name(default))

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        m = Mutation()
        new = [v for v in names if v not in policy.versions]
        for v in new:
            m.record("register-version", None, None, v)
        if new:
            policy = replace(policy, versions=policy.versions | frozenset(new))
        if policy.default is None and default is not None:
            m.record("set-default", None, None, default)
            policy = replace(policy, default=default)
        if m:
            m.policy = policy
        return m

    return change


def set_default(version: str) -> ChangeFn:
    """Make ``version`` the default."""

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        _require_known(policy, version)
        m = Mutation()
        if policy.default != version:
            m.record("set-default", None, policy.default, version)
            m.policy = replace(policy, default=version)
        return m

    return change


def set_rule(tag: str, version: str) -> ChangeFn:
    """Serve tenants tagged ``tag`` the given version; a new rule goes after existing ones."""
    label = check_tag_name(tag)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        _require_known(policy, version)
        rules = dict(policy.rules)
        before = rules.get(label)
        m = Mutation()
        if before != version:
            rules[label] = version  # an existing rule keeps its place in the order
            m.record("rule", None, _rule_text(label, before), _rule_text(label, version))
            m.policy = replace(policy, rules=tuple(rules.items()))
        return m

    return change


def remove_rule(tag: str) -> ChangeFn:
    """Remove the rule for ``tag`` (a no-op when there is none)."""
    label = check_tag_name(tag)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        rules = dict(policy.rules)
        m = Mutation()
        if label in rules:
            before = rules.pop(label)
            m.record("remove-rule", None, _rule_text(label, before), None)
            m.policy = replace(policy, rules=tuple(rules.items()))
        return m

    return change


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


# --- the rollout and the policy -------------------------------------------------------------------


def start_rollout(
    candidate: str,
    percent: float | str = 0,
    *,
    salt: str | None = None,
    plan: Sequence[float | str] = (),
    every: float | None = None,
    clock: Clock = SYSTEM,
) -> ChangeFn:
    """Start the rollout of ``candidate`` at ``percent`` (the first plan step when 0 and a plan)."""
    steps = parse_plan(plan)
    points = parse_percent(percent) if plan == () or percent != 0 else steps[0]
    rollout_salt = salt if salt is not None else f"{candidate}:{secrets.token_hex(8)}"

    def change(state: StateReader) -> Mutation:
        policy = begin_rollout(
            state.policy(),
            candidate,
            percent=points,
            plan=steps,
            salt=rollout_salt,
            now=clock.time(),
            every=every,
        )
        m = Mutation(policy=policy)
        m.record("rollout-start", None, None, rollout_to_json(policy.rollout))
        return m

    return change


def set_rollout_percent(percent: float | str, *, clock: Clock = SYSTEM) -> ChangeFn:
    """Change the running rollout's percent: the one code path that moves it up or down.

    This is the raw state change: lowering it moves tenants back without ratchet marks
    (:meth:`cohortroute.RolloutController.set` marks them first).
    """
    points = parse_percent(percent)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        rollout = require_rollout(policy)
        m = Mutation()
        if rollout.percent != points:
            step = rollout.plan.index(points) if points in rollout.plan else rollout.step
            new = replace(rollout, percent=points, step=step, step_started_at=clock.time())
            m.record("rollout-set", None, rollout.percent, points)
            m.policy = replace(policy, rollout=new)
        return m

    return change


def update_rollout(action: str, update: PolicyUpdate) -> ChangeFn:
    """Apply ``update`` to the policy and audit the rollout's before/after as ``action``."""
    return update_policy(action, update, audit_default=False)


def update_policy(
    action: str, update: PolicyUpdate, *, moves: Moves | None = None, audit_default: bool = True
) -> ChangeFn:
    """Apply ``update`` to the policy; audit the rollout, the default and each moved tenant.

    ``moves(before, after)`` returns ``(tenant, from, to)`` for every tenant the change moves,
    so each tenant's history shows when a percentage change moved it.
    """

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        after = update(policy)
        m = Mutation()
        if after != policy:
            m.record(action, None, rollout_to_json(policy.rollout), rollout_to_json(after.rollout))
            if audit_default and policy.default != after.default:
                m.record("set-default", None, policy.default, after.default)
            for tenant, old, new in moves(policy, after) if moves is not None else ():
                m.record(action, tenant, old, new)
            m.policy = replace(after, revision=policy.revision)
        return m

    return change


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


# --- versions: mounts and retirement --------------------------------------------------------------


class StateMoved(ConflictError):
    """The state changed since a change function's caller read it: read again and retry."""


def mount_versions(
    names: Iterable[str], default: str | None, *, host: str, pid: int, clock: Clock = SYSTEM
) -> ChangeFn:
    """:func:`register_versions`, and record that ``host``/``pid`` mounts them now.

    A mount the same host recorded less than :data:`cohortroute.versions.MOUNT_REFRESH`
    seconds ago is not written again.
    """
    checked = list(dict.fromkeys(check_version_name(v) for v in names))
    register = register_versions(checked, default)

    def change(state: StateReader) -> Mutation:
        m = register(state)
        policy = m.policy or state.policy()
        now = clock.time()
        stale = versions.needs_mount(policy, checked, host, now)
        if stale:
            for version in stale:
                policy = versions.with_info(
                    policy, version, mounted_at=now, mounted_host=host, mounted_pid=pid
                )
            m.record("mount-versions", None, None, {"versions": stale, "host": host, "pid": pid})
            m.policy = policy
        return m

    return change


def retire_version(version: str, pinned: Sequence[str], revision: int, at: float) -> ChangeFn:
    """Retire ``version``; refused while the default, the candidate, in a rule or ``pinned``.

    ``pinned`` are the tenants pinned to it as read at ``revision``: when the store moved on
    since, :class:`StateMoved` asks the caller to read them again.
    """
    name = check_version_name(version)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        if policy.revision != revision:
            raise StateMoved
        versions.refuse_retiring(policy, name, list(pinned))
        m = Mutation()
        if name not in versions.retired(policy):
            m.record("retire-version", None, None, name)
            m.policy = versions.with_info(policy, name, retired_at=at)
        return m

    return change


def unretire_version(version: str) -> ChangeFn:
    """Put a retired version back in service (a no-op when it is not retired)."""
    name = check_version_name(version)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        if name not in policy.versions:
            raise UnknownVersionError(name, policy.versions)
        m = Mutation()
        if name in versions.retired(policy):
            m.record("unretire-version", None, name, None)
            m.policy = versions.with_info(policy, name, retired_at=None)
        return m

    return change


def set_visitor_sample(
    version: str | None, percent: float | str = 0, *, salt: str | None = None
) -> ChangeFn:
    """Serve ``percent`` of the anonymous visitors (no tenant: apex, ``www``) ``version``,
    with a salt of their own (a fresh one when None); ``version=None`` stops sampling.

    Routers given a ``visitor_key`` apply it (see :mod:`cohortroute.assign.visitors`).
    """
    points = parse_percent(percent)
    if version is not None:
        check_version_name(version)

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        before = dict(policy.visitors) or None
        if version is None:
            after = None
        else:
            _require_known(policy, version)
            kept = before is not None and before.get("version") == version
            fresh = f"visitors:{secrets.token_hex(8)}"
            chosen = salt or (str(before["salt"]) if kept and before else fresh)
            after = {"version": version, "percent": points, "salt": chosen}
        m = Mutation()
        if after != before:
            m.record("visitors", None, before, after)
            m.policy = replace(policy, visitors=after or {})
        return m

    return change

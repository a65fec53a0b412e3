"""The Store protocol, shared by every backend, and the URL registry that picks one.

A backend implements a handful of primitives -- read the revision, the policy, one tenant, the
audit log, and :meth:`Store._commit`, which runs a change inside one atomic transaction. Every
state operation (pin, tag, rule, rollout...) is written once here on top of them, so validation,
audit entries and revision bumps behave identically on memory, SQLite, Redis and PostgreSQL.
"""

from __future__ import annotations

import abc
import getpass
import importlib
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError, ConflictError, UnknownVersionError, ValidationError
from ..policy import (
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
)

log = logging.getLogger("cohortroute.store")

_REGISTRY: dict[str, type[Store]] = {}
# Built-in backends are imported only when their scheme is used, so their drivers stay optional.
_BUILTIN = {
    "memory": "cohortroute.store.memory",
    "sqlite": "cohortroute.store.sqlite",
    "redis": "cohortroute.store.redis",
    "rediss": "cohortroute.store.redis",
    "postgresql": "cohortroute.store.postgres",
    "postgres": "cohortroute.store.postgres",
}


_ALL_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at fork time stays held forever in the child: replace it.
    for store in list(_ALL_STORES):
        store._listeners_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


def default_actor() -> str:
    """Who to record in the audit log when the caller does not say: ``$USER`` or the login."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # getuser raises when no user database entry exists (containers)
        return "unknown"


class StateReader(abc.ABC):
    """What a change function sees: the state as of the transaction it runs in."""

    @abc.abstractmethod
    def policy(self) -> Policy:
        """The global policy inside the transaction."""

    @abc.abstractmethod
    def tenant(self, name: str) -> TenantRecord:
        """One tenant's record inside the transaction (an empty record when unknown)."""

    def tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        """Many tenants' records at once; backends override it to read them in one query."""
        return {name: self.tenant(name) for name in names}


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


class Store(abc.ABC):
    """Where the state lives: versions, default, pins, tags, tag rules, rollout, audit log.

    Subclass it to write a backend and declare its URL scheme in the class statement::

        class ToyStore(Store, scheme="toy"):
            @classmethod
            def from_url(cls, url): ...

    after which ``store="toy://..."`` works everywhere (router, CLI, ``COHORTROUTE_STORE``).
    Every write bumps the revision by exactly one and appends its audit entries atomically.
    """

    schemes: ClassVar[tuple[str, ...]] = ()
    #: How often (seconds) a router confirms the revision with this store; 0 = every request.
    refresh_interval: float = 1.0
    #: True for stores across a network: routers then read them off the request thread, waiting
    #: at most their ``lookup_timeout``, so a slow store cannot stall requests.
    remote: ClassVar[bool] = False

    def __init_subclass__(cls, scheme: str | Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if scheme is None:
            return
        names = (scheme,) if isinstance(scheme, str) else tuple(scheme)
        cls.schemes = names
        for name in names:
            _REGISTRY[name.lower()] = cls

    def __init__(self) -> None:
        self._listeners: list[weakref.ref[Any]] = []
        self._listeners_lock = threading.Lock()
        _ALL_STORES.add(self)

    # --- construction --------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Store:
        """Open the store a URL names; raise ConfigurationError if the URL is malformed."""

    # --- primitives a backend implements ---------------------------------------------------

    @abc.abstractmethod
    def revision(self) -> int:
        """The current revision: 0 for an empty store, +1 for every write. Must be cheap."""

    @abc.abstractmethod
    def policy(self) -> Policy:
        """The global policy, stamped with the revision it was read at."""

    @abc.abstractmethod
    def tenant(self, name: str) -> TenantRecord:
        """One tenant's record; an empty record for a tenant the store knows nothing about."""

    @abc.abstractmethod
    def tenants(self) -> Iterator[TenantRecord]:
        """Every tenant with a stored record (pin, tags, ratchet or state), in name order."""

    @abc.abstractmethod
    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first; only one tenant's when ``tenant`` is given."""

    @abc.abstractmethod
    def _commit(self, change: ChangeFn, actor: str) -> int:
        """Run ``change`` in one atomic transaction and persist its mutation.

        When the mutation is empty nothing is written and the current revision is returned;
        otherwise the revision goes up by exactly one, the records and audit entries are written
        together, and the new revision is returned. ``change`` may be called more than once
        (optimistic backends retry), so it must only read through its argument.
        """

    def check(self) -> None:
        """Raise StoreError when the store cannot be used; a cheap health probe."""
        self.revision()

    def close(self) -> None:  # noqa: B027 - optional hook, most backends have nothing to close
        """Release connections; the store may be reopened lazily by the next call."""

    # --- change notification -------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change this process sees (held by weak reference)."""
        ref: weakref.ref[Any]
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref = weakref.WeakMethod(callback)
        else:
            ref = weakref.ref(callback)
        with self._listeners_lock:
            self._listeners.append(ref)

    def _notify(self) -> None:
        """Tell subscribers the state changed (after a local write, or a push from the server)."""
        with self._listeners_lock:
            alive = [ref for ref in self._listeners if ref() is not None]
            self._listeners = alive
        for ref in alive:
            callback = ref()
            if callback is not None:
                callback()

    def _write(self, change: ChangeFn, actor: str | None) -> int:
        revision = self._commit(change, actor or default_actor())
        self._notify()
        return revision

    # --- the state operations, written once for every backend ---------------------------------

    def register_versions(
        self, versions: Iterable[str], default: str | None = None, *, actor: str | None = None
    ) -> int:
        """Record versions as known; make ``default`` the default if the store has none yet."""
        names = list(dict.fromkeys(check_version_name(v) for v in versions))
        if default is not None and default not in names:
            names.append(check_version_name(default))

        def change(state: StateReader) -> Mutation:
            policy = state.policy()
            m = Mutation()
            new = [v for v in names if v not in policy.versions]
            if new:
                for v in new:
                    m.record("register-version", None, None, v)
                policy = replace(policy, versions=policy.versions | frozenset(new))
            if policy.default is None and default is not None:
                m.record("set-default", None, None, default)
                policy = replace(policy, default=default)
            if m:
                m.policy = policy
            return m

        return self._write(change, actor)

    def set_default(self, version: str, *, actor: str | None = None) -> int:
        """Make ``version`` the default: what every tenant gets unless something says otherwise."""

        def change(state: StateReader) -> Mutation:
            policy = state.policy()
            _require_known(policy, version)
            m = Mutation()
            if policy.default != version:
                m.record("set-default", None, policy.default, version)
                m.policy = replace(policy, default=version)
            return m

        return self._write(change, actor)

    def pin(self, tenant: str, version: str, *, actor: str | None = None) -> int:
        """Pin a tenant to a version; a pin beats tag rules and the rollout."""
        name = check_tenant_name(tenant)

        def change(state: StateReader) -> Mutation:
            _require_known(state.policy(), version)
            record = state.tenant(name)
            return _tenant_change(record, replace(record, pin=version), "pin", record.pin, version)

        return self._write(change, actor)

    def unpin(self, tenant: str, *, actor: str | None = None) -> int:
        """Remove a tenant's pin (a no-op when it has none)."""
        name = check_tenant_name(tenant)

        def change(state: StateReader) -> Mutation:
            record = state.tenant(name)
            return _tenant_change(record, replace(record, pin=None), "unpin", record.pin, None)

        return self._write(change, actor)

    def tag(self, tenant: str, tag: str, *, actor: str | None = None) -> int:
        """Add a tag (``beta``, ``internal``...) to a tenant."""
        name, label = check_tenant_name(tenant), check_tag_name(tag)

        def change(state: StateReader) -> Mutation:
            record = state.tenant(name)
            after = replace(record, tags=record.tags | {label})
            return _tenant_change(record, after, "tag", sorted(record.tags), sorted(after.tags))

        return self._write(change, actor)

    def untag(self, tenant: str, tag: str, *, actor: str | None = None) -> int:
        """Remove a tag from a tenant (a no-op when it does not carry it)."""
        name, label = check_tenant_name(tenant), check_tag_name(tag)

        def change(state: StateReader) -> Mutation:
            record = state.tenant(name)
            after = replace(record, tags=record.tags - {label})
            return _tenant_change(record, after, "untag", sorted(record.tags), sorted(after.tags))

        return self._write(change, actor)

    def set_rule(self, tag: str, version: str, *, actor: str | None = None) -> int:
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

        return self._write(change, actor)

    def remove_rule(self, tag: str, *, actor: str | None = None) -> int:
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

        return self._write(change, actor)

    def start_rollout(
        self,
        candidate: str,
        percent: float | str = 0,
        *,
        salt: str | None = None,
        plan: Sequence[float | str] = (),
        every: float | None = None,
        actor: str | None = None,
    ) -> int:
        """Start the rollout of ``candidate`` at ``percent`` (5 means 5 %).

        Only one rollout runs at a time. Each rollout gets a fresh random salt (unless given), so
        different rollouts pick different tenants. ``plan`` lists the percent steps to move
        through, ``every`` the minimum dwell per step in seconds.
        """
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
                now=time.time(),
                every=every,
            )
            rollout = policy.rollout
            m = Mutation(policy=policy)
            m.record("rollout-start", None, None, rollout_to_json(rollout))
            return m

        return self._write(change, actor)

    def set_percent(self, percent: float | str, *, actor: str | None = None) -> int:
        """Set the running rollout's percentage (5 means 5 %, 0.01 % resolution).

        This is the raw state change. Lowering it here moves tenants back without ratchet marks;
        :meth:`cohortroute.RolloutController.set` (and ``cohortroute rollout set``) marks the
        tenants already on the candidate first, so nobody bounces between versions.
        """
        points = parse_percent(percent)

        def change(state: StateReader) -> Mutation:
            policy = state.policy()
            rollout = _require_rollout(policy)
            m = Mutation()
            if rollout.percent != points:
                step = rollout.plan.index(points) if points in rollout.plan else rollout.step
                new = replace(rollout, percent=points, step=step, step_started_at=time.time())
                m.record("rollout-set", None, rollout.percent, points)
                m.policy = replace(policy, rollout=new)
            return m

        return self._write(change, actor)

    def update_rollout(
        self,
        action: str,
        update: Callable[[Policy], Policy],
        *,
        actor: str | None = None,
    ) -> int:
        """Apply ``update`` to the policy atomically and audit it as ``action``.

        The building block the rollout controller uses for halt, resume, advance and finalize.
        """

        def change(state: StateReader) -> Mutation:
            policy = state.policy()
            after = update(policy)
            m = Mutation()
            if after != policy:
                m.record(
                    action, None, rollout_to_json(policy.rollout), rollout_to_json(after.rollout)
                )
                m.policy = replace(after, revision=policy.revision)
            return m

        return self._write(change, actor)

    def update_tenant(
        self,
        tenant: str,
        action: str,
        update: Callable[[TenantRecord, Policy], TenantRecord],
        *,
        actor: str | None = None,
    ) -> int:
        """Apply ``update`` to one tenant's record atomically and audit it as ``action``."""
        name = check_tenant_name(tenant)

        def change(state: StateReader) -> Mutation:
            record = state.tenant(name)
            after = update(record, state.policy())
            return _tenant_change(record, after, action, _summary(record), _summary(after))

        return self._write(change, actor)

    # --- appended for the rollout controller (issue 5): batched tenant writes, the registry ----

    def update_tenants(
        self,
        tenants: Iterable[str],
        action: str,
        update: Callable[[TenantRecord, Policy], TenantRecord],
        *,
        describe: Callable[[TenantRecord, TenantRecord], tuple[Any, Any]] | None = None,
        audit_each: bool = True,
        batch_size: int = 10_000,
        actor: str | None = None,
    ) -> int:
        """Apply ``update`` to many tenants, ``batch_size`` tenants per atomic transaction.

        Each batch is one commit (one revision), so a million tenants cost a hundred writes, not
        a million. With ``audit_each`` every changed tenant gets its own audit entry -- its
        before/after from ``describe(before, after)``, the whole record by default -- so
        ``history(tenant)`` tells its story; without it each batch gets one summary entry.
        Returns the revision after the last batch.
        """
        names = list(dict.fromkeys(check_tenant_name(t) for t in tenants))
        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1")
        revision = self.revision() if not names else 0
        for start in range(0, len(names), batch_size):
            chunk = names[start : start + batch_size]

            def change(state: StateReader, chunk: list[str] = chunk) -> Mutation:
                policy = state.policy()
                m = Mutation()
                records = state.tenants(chunk)
                for name in chunk:
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

            revision = self._write(change, actor)
        return revision

    def register_tenants(
        self,
        tenants: Iterable[str],
        *,
        tags: Mapping[str, Iterable[str]] | None = None,
        audit_each: bool = False,
        batch_size: int = 10_000,
        actor: str | None = None,
    ) -> int:
        """Record tenants in the registry (and add the given ``tags``); returns how many were new.

        Already registered tenants cost no write unless new tags are added to them, so a router
        may call this for any tenant it is unsure about. Large imports are written
        ``batch_size`` tenants per transaction, with one summary audit entry per batch unless
        ``audit_each``.
        """
        labels = {
            check_tenant_name(name): frozenset(check_tag_name(t) for t in values)
            for name, values in (tags or {}).items()
        }
        new: set[str] = set()

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            added = labels.get(record.name, frozenset())
            if record.registered and added <= record.tags:
                return record
            state = dict(record.state)
            if not record.registered:
                state[STATE_REGISTERED] = time.time()
                new.add(record.name)
            return replace(record, tags=record.tags | added, state=state)

        self.update_tenants(
            tenants,
            "tenants-register",
            update,
            describe=lambda before, after: (
                None,
                {"tags": sorted(after.tags), "registered": after.state.get(STATE_REGISTERED)},
            ),
            audit_each=audit_each,
            batch_size=batch_size,
            actor=actor,
        )
        return len(new)

    def update_policy(
        self,
        action: str,
        update: Callable[[Policy], Policy],
        *,
        moves: Callable[[Policy, Policy], Iterable[tuple[str, Any, Any]]] | None = None,
        actor: str | None = None,
    ) -> int:
        """Like :meth:`update_rollout`, plus one audit entry per tenant the change moves.

        ``moves(before, after)`` returns ``(tenant, from, to)`` for every tenant the change moves
        (the rollout controller passes the exact ``preview`` list), so each tenant's history shows
        when a percentage change moved it, without writing its record.
        """

        def change(state: StateReader) -> Mutation:
            policy = state.policy()
            after = update(policy)
            m = Mutation()
            if after != policy:
                m.record(
                    action, None, rollout_to_json(policy.rollout), rollout_to_json(after.rollout)
                )
                if policy.default != after.default:
                    m.record("set-default", None, policy.default, after.default)
                for tenant, old, new in moves(policy, after) if moves is not None else ():
                    m.record(action, tenant, old, new)
                m.policy = replace(after, revision=policy.revision)
            return m

        return self._write(change, actor)


def _rule_text(tag: str, version: str | None) -> str | None:
    return None if version is None else f"{tag} -> {version}"


def _describe(before: TenantRecord, after: TenantRecord) -> tuple[Any, Any]:
    return _summary(before), _summary(after)


def _summary(record: TenantRecord) -> dict[str, Any]:
    return {
        "pin": record.pin,
        "tags": sorted(record.tags),
        "ratchet": record.ratchet,
        "state": dict(record.state),
    }


def _tenant_change(
    before: TenantRecord, after: TenantRecord, action: str, old: Any, new: Any
) -> Mutation:
    m = Mutation()
    if after != before:
        m.tenants[after.name] = after
        m.record(action, after.name, old, new)
    return m


def _require_known(policy: Policy, version: str) -> None:
    if version not in policy.versions:
        raise UnknownVersionError(version, policy.versions)


def _require_rollout(policy: Policy) -> Rollout:
    if policy.rollout is None:
        raise ConflictError(
            "no rollout is running; start one with `cohortroute rollout start VERSION`"
        )
    return policy.rollout


def known_schemes() -> list[str]:
    """Every URL scheme a store is registered for (built-in and custom)."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def open_store(url: str | Store) -> Store:
    """Return the store a URL names (``memory://``, ``sqlite:///path.db``, ``redis://...``...).

    A :class:`Store` instance is returned as is. An unknown scheme raises ConfigurationError
    listing the known ones.
    """
    if isinstance(url, Store):
        return url
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"store must be a URL like 'sqlite:///state.db' or a Store object, got {url!r}; "
            f"known schemes: {', '.join(known_schemes())}"
        )
    scheme = urlsplit(url).scheme.lower()
    cls = _REGISTRY.get(scheme)
    if cls is None and scheme in _BUILTIN:
        importlib.import_module(_BUILTIN[scheme])
        cls = _REGISTRY.get(scheme)
    if cls is None:
        _load_plugins(scheme)
        cls = _REGISTRY.get(scheme)
    if cls is None:
        raise ConfigurationError(
            f"unknown store scheme {scheme!r} in {url!r}; known schemes: "
            f"{', '.join(known_schemes())}. A custom store registers its scheme with "
            "`class MyStore(Store, scheme='my')` in a module that is imported first: a "
            "'cohortroute.stores' entry point, or COHORTROUTE_PLUGINS=my.module for the CLI."
        )
    return cls.from_url(url)


def _load_plugins(scheme: str) -> None:
    """Import the modules that may define ``scheme``: entry points, then COHORTROUTE_PLUGINS."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="cohortroute.stores"):
        if entry.name.lower() == scheme:
            try:
                entry.load()
            except Exception as exc:
                raise ConfigurationError(
                    f"the store plugin {entry.value!r} for scheme {scheme!r} failed to load: "
                    f"{exc}; reinstall the package that provides it"
                ) from exc
    for module in filter(None, os.environ.get("COHORTROUTE_PLUGINS", "").split(",")):
        try:
            importlib.import_module(module.strip())
        except ImportError as exc:
            raise ConfigurationError(
                f"COHORTROUTE_PLUGINS names {module.strip()!r}, which cannot be imported: {exc}; "
                "fix the name or PYTHONPATH"
            ) from exc

"""The store backend interface: the primitives every backend implements.

A backend reads the revision, the policy, one tenant, every tenant and the audit log, and
implements :meth:`Store.commit`, which runs a change function inside one atomic transaction.
The state operations (pin, tag, rule, rollout...) are written once, as change functions in
:mod:`cohortroute.changes`; the methods here only wrap them, so validation, audit entries and
revision bumps behave identically on every backend.
"""

from __future__ import annotations

import abc
import getpass
import heapq
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .. import _forksafe, changes, ratchet
from .._clock import SYSTEM, Clock
from ..changes import ChangeFn, FunctionReader, Mutation, StateReader
from ..errors import ConflictError, ValidationError
from ..policy import AuditEntry, Policy, TenantRecord, parse_percent
from ..versions import VersionInfo
from ..versions import describe as describe_versions
from . import _registry
from ._registry import known_schemes, open_store

__all__ = [
    "ChangeFn",
    "FunctionReader",
    "Mutation",
    "StateReader",
    "Store",
    "default_actor",
    "known_schemes",
    "open_store",
]

log = logging.getLogger(__name__)


def default_actor() -> str:
    """Who to record in the audit log when the caller does not say: ``$USER`` or the login."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # getuser raises when no user database entry exists (containers)
        return "unknown"


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
    #: The clock that stamps audit entries and timed rollout steps.
    clock: Clock = SYSTEM

    def __init_subclass__(cls, scheme: str | Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A backend written before commit() was public implements _commit(): serve it as is.
        if "_commit" in cls.__dict__ and getattr(cls.commit, "__isabstractmethod__", False):
            cls.commit = _legacy_commit  # type: ignore[method-assign]
        if scheme is not None:
            cls.schemes = (scheme,) if isinstance(scheme, str) else tuple(scheme)
            _registry.register(cls, cls.schemes)

    def __init__(self) -> None:
        self._listeners: list[weakref.ref[Any]] = []
        self._listeners_lock = threading.Lock()
        _forksafe.register(self, after_in_child=_after_fork_in_child, before=_before_fork)

    def _after_fork_in_child(self) -> None:
        """Drop what the child cannot use; subclasses extend it (their connections, threads).

        A lock held by another thread at fork time stays held forever in the child: replace it.
        """
        self._listeners_lock = threading.Lock()

    def _before_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in the parent just before ``os.fork()``."""

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

    def read_tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        """Several tenants' records (an empty record for each unknown one).

        Routers re-read every tenant they serve with it when the revision moves; a remote
        backend overrides it to read them all in one round trip.
        """
        return {name: self.tenant(name) for name in names}

    @abc.abstractmethod
    def tenants(self) -> Iterator[TenantRecord]:
        """Every tenant with a stored record (pin, tags, ratchet or state), in name order."""

    def tenant_names(self, prefix: str = "", *, after: str = "", limit: int = 50) -> list[str]:
        """Up to ``limit`` stored tenant names starting with ``prefix`` and sorting after
        ``after``, in name order: one page of a search (the admin console's tenants page).

        This default reads every record once (keeping only ``limit`` names); backends with an
        index on names override it to read just the page.
        """
        return heapq.nsmallest(
            limit,
            (r.name for r in self.tenants() if r.name > after and r.name.startswith(prefix)),
        )

    @abc.abstractmethod
    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first; only one tenant's when ``tenant`` is given."""

    @abc.abstractmethod
    def commit(self, change: ChangeFn, actor: str) -> int:
        """Run ``change`` in one atomic transaction and persist its mutation.

        When the mutation is empty nothing is written and the current revision is returned;
        otherwise the revision goes up by exactly one, the records and audit entries
        (``mutation.audit(revision, actor, self.clock.time())``) are written together, and the
        new revision is returned. ``change`` may be called more than once (optimistic backends
        retry), so it must only read through its argument. It does not notify subscribers:
        :meth:`write` does.
        """

    def _commit(self, change: ChangeFn, actor: str) -> int:
        """The former name of :meth:`commit`, kept for callers and backends that use it."""
        return self.commit(change, actor)

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

    def write(self, change: ChangeFn, *, actor: str | None = None) -> int:
        """Commit a change function (see :mod:`cohortroute.changes`) and tell subscribers."""
        revision = self.commit(change, actor or default_actor())
        self._notify()
        return revision

    # --- the state operations: thin wrappers over cohortroute.changes ----------------------

    def register_versions(
        self, versions: Iterable[str], default: str | None = None, *, actor: str | None = None
    ) -> int:
        """Record versions as known; make ``default`` the default if the store has none yet."""
        return self.write(changes.register_versions(versions, default), actor=actor)

    def mount_versions(
        self,
        versions: Iterable[str],
        default: str | None = None,
        *,
        host: str | None = None,
        pid: int | None = None,
        actor: str | None = None,
    ) -> int:
        """:meth:`register_versions`, recording that this host and process mount them now.

        Routers call it when they start; ``cohortroute versions`` shows the last mount.
        """
        change = changes.mount_versions(
            versions,
            default,
            host=socket.gethostname() if host is None else host,
            pid=os.getpid() if pid is None else pid,
            clock=self.clock,
        )
        return self.write(change, actor=actor)

    def versions(self) -> list[VersionInfo]:
        """Every known version: default or retired, where and when last mounted, what names it."""
        return describe_versions(self.policy(), self.tenants())

    def retire(self, version: str, *, actor: str | None = None) -> int:
        """Retire a version: pins, rules and rollouts naming it are refused from then on.

        Refused while it is the default, the running rollout's candidate, in a tag rule or
        pinned; the error says what to do first.
        """
        for _ in range(5):  # tenants pinned meanwhile move the revision: read them again
            revision = self.revision()
            pinned = [r.name for r in self.tenants() if r.pin == version]
            change = changes.retire_version(version, pinned, revision, self.clock.time())
            try:
                return self.write(change, actor=actor)
            except changes.StateMoved:
                continue
        raise ConflictError(f"the store kept changing while {version} was checked; try again")

    def unretire(self, version: str, *, actor: str | None = None) -> int:
        """Put a retired version back in service."""
        return self.write(changes.unretire_version(version), actor=actor)

    def set_default(self, version: str, *, actor: str | None = None) -> int:
        """Make ``version`` the default: what every tenant gets unless something says otherwise."""
        return self.write(changes.set_default(version), actor=actor)

    def pin(self, tenant: str, version: str, *, actor: str | None = None) -> int:
        """Pin a tenant to a version; a pin beats tag rules and the rollout."""
        return self.write(changes.pin(tenant, version), actor=actor)

    def unpin(self, tenant: str, *, actor: str | None = None) -> int:
        """Remove a tenant's pin (a no-op when it has none)."""
        return self.write(changes.unpin(tenant), actor=actor)

    def tag(self, tenant: str, tag: str, *, actor: str | None = None) -> int:
        """Add a tag (``beta``, ``internal``...) to a tenant."""
        return self.write(changes.tag(tenant, tag), actor=actor)

    def untag(self, tenant: str, tag: str, *, actor: str | None = None) -> int:
        """Remove a tag from a tenant (a no-op when it does not carry it)."""
        return self.write(changes.untag(tenant, tag), actor=actor)

    def set_rule(self, tag: str, version: str, *, actor: str | None = None) -> int:
        """Serve tenants tagged ``tag`` the given version; a new rule goes after existing ones."""
        return self.write(changes.set_rule(tag, version), actor=actor)

    def remove_rule(self, tag: str, *, actor: str | None = None) -> int:
        """Remove the rule for ``tag`` (a no-op when there is none)."""
        return self.write(changes.remove_rule(tag), actor=actor)

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
        change = changes.start_rollout(
            candidate, percent, salt=salt, plan=plan, every=every, clock=self.clock
        )
        return self.write(change, actor=actor)

    def set_percent(self, percent: float | str, *, actor: str | None = None) -> int:
        """Set the running rollout's percentage (5 means 5 %, 0.01 % resolution).

        Lowering goes through the ratchet, as :meth:`cohortroute.RolloutController.set` does:
        the registered tenants already on the candidate are marked first, so nobody bounces
        back (the controller also waits for routers to record the tenants they just served).
        """
        points = parse_percent(percent)
        rollout = changes.require_rollout(self.policy())
        current = rollout.at(self.clock.time())
        if points >= current.percent:
            return self.write(changes.set_rollout_percent(percent, clock=self.clock), actor=actor)
        step = ratchet.ramp_step(current.plan, points)
        now = self.clock.time()
        ratchet.lower_percent(self, rollout, current, points, step=step, now=now, actor=actor)
        return self.revision()

    def update_rollout(
        self, action: str, update: Callable[[Policy], Policy], *, actor: str | None = None
    ) -> int:
        """Apply ``update`` to the policy atomically and audit it as ``action``.

        The building block the rollout controller uses for halt, resume, advance and finalize.
        """
        return self.write(changes.update_rollout(action, update), actor=actor)

    def update_tenant(
        self,
        tenant: str,
        action: str,
        update: Callable[[TenantRecord, Policy], TenantRecord],
        *,
        actor: str | None = None,
    ) -> int:
        """Apply ``update`` to one tenant's record atomically and audit it as ``action``."""
        return self.write(changes.update_tenant(tenant, action, update), actor=actor)

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
        names = changes.check_tenants(tenants)
        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1")
        revision = self.revision() if not names else 0
        for start in range(0, len(names), batch_size):
            change = changes.update_tenants(
                names[start : start + batch_size],
                action,
                update,
                describe=describe,
                audit_each=audit_each,
            )
            revision = self.write(change, actor=actor)
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
        new: set[str] = set()
        update, describe = changes.registration(tags, new, self.clock)
        self.update_tenants(
            tenants,
            "tenants-register",
            update,
            describe=describe,
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
        return self.write(changes.update_policy(action, update, moves=moves), actor=actor)


def _legacy_commit(self: Store, change: ChangeFn, actor: str) -> int:
    return self._commit(change, actor)


# The registry calls these with the store; the method is looked up on its class, so subclasses
# overrides run.
def _after_fork_in_child(store: Store) -> None:
    store._after_fork_in_child()


def _before_fork(store: Store) -> None:
    store._before_fork()

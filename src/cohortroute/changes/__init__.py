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

from .base import (
    ChangeFn,
    Describe,
    FunctionReader,
    Moves,
    Mutation,
    PolicyUpdate,
    StateReader,
    TenantUpdate,
    require_rollout,
    summary,
    tenant_change,
)
from .rollout import set_rollout_percent, start_rollout, update_policy, update_rollout
from .rules import (
    StateMoved,
    mount_versions,
    register_versions,
    remove_rule,
    retire_version,
    set_default,
    set_rule,
    set_visitor_sample,
    unretire_version,
)
from .tenants import (
    ImportCounts,
    check_tenants,
    import_tenants,
    pin,
    registration,
    tag,
    unpin,
    untag,
    update_tenant,
    update_tenants,
)

__all__ = [
    "ChangeFn",
    "Describe",
    "FunctionReader",
    "ImportCounts",
    "Moves",
    "Mutation",
    "PolicyUpdate",
    "StateMoved",
    "StateReader",
    "TenantUpdate",
    "check_tenants",
    "import_tenants",
    "mount_versions",
    "pin",
    "register_versions",
    "registration",
    "remove_rule",
    "require_rollout",
    "retire_version",
    "set_default",
    "set_rollout_percent",
    "set_rule",
    "set_visitor_sample",
    "start_rollout",
    "summary",
    "tag",
    "tenant_change",
    "unpin",
    "unretire_version",
    "untag",
    "update_policy",
    "update_rollout",
    "update_tenant",
    "update_tenants",
]

"""What each version needs from a tenant's data, as the routers that mount it record it.

A router built with ``migrations=`` knows the module numbers each of its versions needs (see
:mod:`cohortroute.migrations`). It records them next to its mount of the versions
(:meth:`Store.mount_versions <cohortroute.store.base.Store.mount_versions>`), in the policy's
per-version info: ``version_info[v]["modules"]`` (``{}``: the version needs nothing) and, when
the router can tell, ``version_info[v]["migrations"]``, the ``MODULE:ATTR`` of its Migrations
object. The rollout controller reads them, so ``cohortroute rollout start v2`` gates a rollout
whose data must be migrated even without ``--app``, and the verbs that move data can say which
``--app`` they need. A store without this information reads as "not recorded", and releases
that do not know it ignore it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .changes import ChangeFn, Mutation, StateReader
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .migrations import Migrations
    from .policy import Policy
    from .store.base import Store

log = logging.getLogger(__name__)

MODULES = "modules"
MIGRATIONS = "migrations"


@dataclass(frozen=True, slots=True)
class VersionNeeds:
    """What a router records about its versions' data: module numbers, and its ``--app``."""

    modules: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    app: str | None = None

    @classmethod
    def of(cls, migrations: Migrations, versions: list[str]) -> VersionNeeds:
        """The needs of ``versions`` according to ``migrations``."""
        return cls({v: migrations.modules_for(v) for v in versions}, migrations.origin)


def apply(policy: Policy, needs: VersionNeeds) -> tuple[Policy, dict[str, Any]]:
    """``policy`` with ``needs`` recorded, and what changed (version -> its new info) for the
    audit log; an unchanged policy and ``{}`` when everything was recorded already."""
    changed: dict[str, Any] = {}
    table = dict(policy.version_info)
    for version, modules in needs.modules.items():
        info = dict(table.get(version, {}))
        wanted = {MODULES: dict(modules)}
        if needs.app is not None:
            wanted[MIGRATIONS] = needs.app  # type: ignore[assignment]
        if all(info.get(k) == v for k, v in wanted.items()):
            continue
        info.update(wanted)
        table[version] = info
        changed[version] = wanted
    if not changed:
        return policy, {}
    return replace(policy, version_info=table), changed


def record_change(needs: VersionNeeds) -> ChangeFn:
    """The change recording ``needs`` (audited as ``version-needs``; no write when known)."""

    def change(state: StateReader) -> Mutation:
        after, changed = apply(state.policy(), needs)
        m = Mutation()
        if changed:
            m.record("version-needs", None, None, changed)
            m.policy = after
        return m

    return change


def record(store: Store, migrations: Migrations, versions: list[str]) -> None:
    """Record what a router's ``versions`` need according to its ``migrations``; never fails
    the router (it logs instead)."""
    try:
        store.write(
            record_change(VersionNeeds.of(migrations, versions)), actor="cohortroute-router"
        )
    except Exception as exc:  # a router starts whatever the store does; the next one records
        log.warning(
            "cohortroute: could not record what the mounted versions need from tenant data "
            "(rollout start cannot gate on it without --app until a router does): %s",
            exc,
        )


def recorded(policy: Policy, version: str) -> dict[str, int] | None:
    """The module numbers routers recorded for ``version``; None when none did."""
    value = policy.version_info.get(version, {}).get(MODULES)
    if not isinstance(value, Mapping):
        return None
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int) and v}


def recorded_app(policy: Policy, *versions: str) -> str | None:
    """The ``MODULE:ATTR`` of the Migrations the routers of ``versions`` were built with."""
    for version in versions:
        app = policy.version_info.get(version, {}).get(MIGRATIONS)
        if isinstance(app, str) and app:
            return app
    return None


def app_option(policy: Policy, *versions: str) -> str:
    """The ``--app`` the routers of ``versions`` were built with, as an option to type."""
    app = recorded_app(policy, *versions)
    if app is None:
        return "--app MODULE:ATTR (the Migrations your routers are built with)"
    return f"--app {app}"


def gated(policy: Policy, candidate: str, migrations: Migrations | None) -> bool:
    """Whether a rollout of ``candidate`` must migrate tenants' data first.

    What the routers recorded decides when they recorded both the default and the candidate;
    a controller's own ``migrations`` must then agree with them (else it would migrate to the
    wrong module numbers). Without anything recorded, the controller's ``migrations`` decide
    (none: not gated). Refused when the routers recorded only one side and the controller has
    no migrations to tell.
    """
    default = policy.default or ""
    have, want = recorded(policy, default), recorded(policy, candidate)
    if migrations is not None:
        for version, stored in ((default, have), (candidate, want)):
            declared = migrations.modules_for(version)
            if stored is not None and stored != declared:
                raise ConfigurationError(
                    f"the migrations given say {version} needs {_show(declared)}, but the "
                    f"routers that mount it record {_show(stored)}: use the migrations your "
                    f"routers are built with ({app_option(policy, version)})"
                )
        return migrations.needs_migration(default, candidate)
    if have is not None and want is not None:
        return have != want
    if (want or have) and (want is None or have is None):
        known, unknown = (candidate, default) if want is not None else (default, candidate)
        raise ConfigurationError(
            f"routers record that {known}'s tenant data needs {_show(recorded(policy, known))}, "
            f"but no router has recorded what {unknown} needs, so whether the rollout must "
            f"migrate data cannot be told: pass {app_option(policy, known)}"
        )
    return False


def _show(modules: Mapping[str, int] | None) -> str:
    if not modules:
        return "no migrated data"
    return ", ".join(f"{m} {n}" for m, n in sorted(modules.items()))

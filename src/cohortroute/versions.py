"""The versions a store knows: where and when each was last mounted, and retiring old ones.

Routers record the versions they mount when they start (:meth:`Store.mount_versions
<cohortroute.store.base.Store.mount_versions>`), with their host, process id and the time, so
``cohortroute versions`` can say which versions are still mounted somewhere. A version nobody
serves any more is *retired* (:meth:`Store.retire <cohortroute.store.base.Store.retire>`):
pins, tag rules and rollouts naming it are refused from then on, so a laptop that once mounted
a test version does not leave it selectable forever.

The stored form is an optional ``version_info`` object in the policy (version -> ``mounted_at``,
``mounted_host``, ``mounted_pid``, ``retired_at``); a store without it reads as no information,
and releases that do not know it ignore it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .advice import Call, advise
from .errors import ConflictError, UnknownVersionError
from .policy import Policy, TenantRecord

log = logging.getLogger(__name__)

MOUNT_REFRESH = 60.0
"""Seconds during which another mount from the same host is not written again: a fleet of
workers starting together costs one write per host, not one per worker."""


class RetiredVersionError(ConflictError):
    """A pin, rule, default or rollout names a retired version."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One known version: whether it is the default or retired, its last mount, what names it.

    ``uses`` lists what still names it: ``default``, ``rollout``, ``rule:TAG``, ``pins:N``.
    """

    version: str
    default: bool = False
    retired_at: float | None = None
    mounted_at: float | None = None
    mounted_host: str | None = None
    mounted_pid: int | None = None
    uses: tuple[str, ...] = ()

    @property
    def retired(self) -> bool:
        """True once the version was retired."""
        return self.retired_at is not None

    def to_json(self) -> dict[str, Any]:
        """The ``versions --json`` object."""
        return {
            "version": self.version,
            "default": self.default,
            "retired": self.retired,
            "retired_at": self.retired_at,
            "mounted_at": self.mounted_at,
            "mounted_host": self.mounted_host,
            "mounted_pid": self.mounted_pid,
            "uses": list(self.uses),
        }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def retired(policy: Policy) -> frozenset[str]:
    """The versions retired in ``policy``."""
    return frozenset(
        v for v, info in policy.version_info.items() if _number(info.get("retired_at")) is not None
    )


def describe(policy: Policy, tenants: Iterable[TenantRecord]) -> list[VersionInfo]:
    """Every known version with its mount, retirement and uses, sorted by name."""
    pins: dict[str, int] = {}
    for record in tenants:
        if record.pin is not None:
            pins[record.pin] = pins.get(record.pin, 0) + 1
    out = []
    for version in sorted(policy.versions):
        info = policy.version_info.get(version, {})
        host, pid = info.get("mounted_host"), info.get("mounted_pid")
        out.append(
            VersionInfo(
                version=version,
                default=version == policy.default,
                retired_at=_number(info.get("retired_at")),
                mounted_at=_number(info.get("mounted_at")),
                mounted_host=host if isinstance(host, str) else None,
                mounted_pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                uses=tuple(uses(policy, version, pins.get(version, 0))),
            )
        )
    return out


def uses(policy: Policy, version: str, pinned: int) -> list[str]:
    """What names ``version``: ``default``, ``rollout``, ``rule:TAG``, ``pins:N``."""
    found = ["default"] if policy.default == version else []
    if policy.rollout is not None and policy.rollout.candidate == version:
        found.append("rollout")
    found.extend(f"rule:{tag}" for tag, v in policy.rules if v == version)
    if pinned:
        found.append(f"pins:{pinned}")
    return found


def check_serving(policy: Policy, version: str) -> None:
    """Refuse a version a pin, rule, default or rollout cannot name: unknown, or retired."""
    if version not in policy.versions:
        raise UnknownVersionError(version, policy.versions - retired(policy))
    if version in retired(policy):
        others = ", ".join(sorted(policy.versions - retired(policy))) or "none"
        raise advise(
            RetiredVersionError,
            f"version {version} is retired: {{unretire}} to use it again, or choose one of the "
            f"versions in service: {others}",
            unretire=Call("versions unretire", "unretire", (version,), repr(version)),
        )


def refuse_retiring(policy: Policy, version: str, pinned: list[str]) -> None:
    """Refuse to retire ``version`` while anything names it, saying what to do first."""
    if version not in policy.versions:
        raise UnknownVersionError(version, policy.versions)
    if policy.default == version:
        raise ConflictError(
            f"{version} is the default version, served to every tenant nothing else decides: "
            "roll out another version and finalize it first; it then stops being the default"
        )
    rollout = policy.rollout
    if rollout is not None and rollout.candidate == version:
        raise advise(
            ConflictError,
            f"{version} is the candidate of the running rollout: {{finalize}} or {{rollback}} "
            "first",
            finalize=Call("rollout finalize", "finalize"),
            rollback=Call("rollout rollback", "rollback"),
        )
    rules = [tag for tag, v in policy.rules if v == version]
    if rules:
        raise advise(
            ConflictError,
            f"tag rule(s) {', '.join(f'{t} -> {version}' for t in rules)} name {version}: "
            "{remove} first",
            remove=Call("rule", "remove_rule", ("--remove", rules[0]), repr(rules[0])),
        )
    if pinned:
        shown = ", ".join(pinned[:10]) + (" ..." if len(pinned) > 10 else "")
        raise advise(
            ConflictError,
            f"{len(pinned)} tenant(s) are pinned to {version} ({shown}): {{unpin}} (or pin them "
            "to another version) first",
            unpin=Call("unpin", "unpin", (pinned[0],), repr(pinned[0])),
        )


def with_info(policy: Policy, version: str, **values: Any) -> Policy:
    """``policy`` with ``values`` set in ``version``'s stored info (None removes a key)."""
    info = {**policy.version_info.get(version, {}), **values}
    info = {k: v for k, v in info.items() if v is not None}
    table = {**policy.version_info, version: info}
    if not info:
        del table[version]
    return replace(policy, version_info=table)


def needs_mount(policy: Policy, versions: Iterable[str], host: str, now: float) -> list[str]:
    """The versions whose last recorded mount is not this host's, or is older than a minute."""
    stale = []
    for version in versions:
        info: Mapping[str, Any] = policy.version_info.get(version, {})
        at = _number(info.get("mounted_at"))
        if info.get("mounted_host") != host or at is None or not 0 <= now - at < MOUNT_REFRESH:
            stale.append(version)
    return stale

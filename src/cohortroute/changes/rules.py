"""Change functions for versions and rules: register, default, tag rules, mounts, retirement, the
anonymous visitors' sample."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import replace

from .. import versions
from .._clock import SYSTEM, Clock
from ..errors import ConflictError, UnknownVersionError
from ..policy import (
    check_tag_name,
    check_version_name,
    parse_percent,
)
from .base import (
    ChangeFn,
    Mutation,
    StateReader,
    _require_known,
    _rule_text,
)

log = logging.getLogger(__name__)


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

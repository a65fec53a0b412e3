"""The data model: what a store holds and what a decision is computed from.

Everything here is immutable and JSON-serialisable through :func:`policy_to_json` and friends,
so every store backend persists the same shapes and the state round-trips through each of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .tenancy import is_valid_label

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")


def check_version_name(version: str) -> str:
    """Return ``version`` if it is a valid version name, else raise ValidationError."""
    if not isinstance(version, str) or _VERSION.match(version) is None:
        raise ValidationError(
            f"invalid version name {version!r}: use 1-64 of letters, digits and . _ + - "
            "(for example '2026.12')"
        )
    return version


def check_tenant_name(tenant: str) -> str:
    """Return the tenant name lower-cased if it is one DNS label, else raise ValidationError."""
    if not isinstance(tenant, str) or not is_valid_label(tenant.lower()):
        raise ValidationError(
            f"invalid tenant {tenant!r}: a tenant is one DNS label (1-63 of a-z, 0-9 and '-', "
            "not starting or ending with '-'), as in acme.example.com -> 'acme'"
        )
    return tenant.lower()


def check_tag_name(tag: str) -> str:
    """Return the tag lower-cased if valid (1-63 of a-z 0-9 . _ -), else raise ValidationError."""
    if not isinstance(tag, str) or _TAG.match(tag.lower()) is None:
        raise ValidationError(
            f"invalid tag {tag!r}: use 1-63 of a-z, 0-9 and . _ - (for example 'beta')"
        )
    return tag.lower()


def parse_percent(value: str | float | int) -> int:
    """Parse a percentage (``5``, ``0.5``, ``"5%"``, ``"12.34"``) into basis points 0..10000.

    Resolution is 0.01 %; finer values are refused rather than silently rounded.
    """
    text = str(value).strip()
    if text.endswith("%"):
        text = text[:-1].strip()
    match = re.fullmatch(r"(\d{1,3})(?:\.(\d{1,2}))?", text)
    if match is None:
        raise ValidationError(
            f"invalid percentage {value!r}: give a number from 0 to 100 with at most two "
            "decimals, like 5, 0.5 or 12.25%"
        )
    points = int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))
    if points > 10_000:
        raise ValidationError(f"invalid percentage {value!r}: it must be between 0 and 100")
    return points


def format_percent(points: int) -> str:
    """Basis points as a human percentage: 500 -> '5%', 50 -> '0.5%', 1234 -> '12.34%'."""
    whole, frac = divmod(points, 100)
    return f"{whole}%" if not frac else f"{whole}.{frac:02d}".rstrip("0") + "%"


@dataclass(frozen=True, slots=True)
class Rollout:
    """The one active rollout: ``candidate`` is served to tenants whose bucket is below ``percent``.

    ``percent`` is in basis points (0..10000). ``plan`` holds the planned steps (basis points),
    ``step`` the index of the current one (-1 without a plan), ``every`` the minimum dwell per
    step in seconds, ``step_started_at`` when the current step began, and ``halted`` freezes it.
    """

    candidate: str
    percent: int
    salt: str
    started_at: float = field(default_factory=time.time)
    plan: tuple[int, ...] = ()
    step: int = -1
    every: float | None = None
    step_started_at: float | None = None
    halted: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """The global part of the state: small, read whole, cached per revision.

    ``rules`` are ordered (tag, version) pairs: when a tenant carries several tagged rules the
    first rule in this order wins, so precedence stays total.
    """

    default: str | None = None
    versions: frozenset[str] = frozenset()
    rules: tuple[tuple[str, str], ...] = ()
    rollout: Rollout | None = None
    revision: int = 0

    def rule_for(self, tags: frozenset[str]) -> tuple[str, str] | None:
        """Return the first (tag, version) rule matching one of ``tags``, or None."""
        if tags:
            for tag, version in self.rules:
                if tag in tags:
                    return tag, version
        return None


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """What the store knows about one tenant.

    ``ratchet`` marks the version a rollout moved the tenant to: it stays there when the rollout
    is lowered or halted, until an explicit rollback. ``state`` is free-form room for the rollout
    controller (migration status, leases...), stored as JSON.
    """

    name: str
    pin: str | None = None
    tags: frozenset[str] = frozenset()
    ratchet: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the record carries nothing worth storing."""
        return self.pin is None and not self.tags and self.ratchet is None and not self.state


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change: who did what, when, and the value before and after."""

    revision: int
    at: float
    actor: str
    action: str
    tenant: str | None
    before: Any
    after: Any


# --- JSON shapes shared by every store backend ------------------------------------------------


def rollout_to_json(rollout: Rollout | None) -> dict[str, Any] | None:
    """Serialise a rollout (or None) to plain JSON types."""
    if rollout is None:
        return None
    return {
        "candidate": rollout.candidate,
        "percent": rollout.percent,
        "salt": rollout.salt,
        "started_at": rollout.started_at,
        "plan": list(rollout.plan),
        "step": rollout.step,
        "every": rollout.every,
        "step_started_at": rollout.step_started_at,
        "halted": rollout.halted,
    }


def rollout_from_json(data: Mapping[str, Any] | None) -> Rollout | None:
    """Inverse of :func:`rollout_to_json`."""
    if data is None:
        return None
    return Rollout(
        candidate=str(data["candidate"]),
        percent=int(data["percent"]),
        salt=str(data["salt"]),
        started_at=float(data.get("started_at", 0.0)),
        plan=tuple(int(p) for p in data.get("plan", ())),
        step=int(data.get("step", -1)),
        every=None if data.get("every") is None else float(data["every"]),
        step_started_at=(
            None if data.get("step_started_at") is None else float(data["step_started_at"])
        ),
        halted=bool(data.get("halted", False)),
    )


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """Serialise the global policy (without its revision, which stores keep separately)."""
    return {
        "default": policy.default,
        "versions": sorted(policy.versions),
        "rules": [list(rule) for rule in policy.rules],
        "rollout": rollout_to_json(policy.rollout),
    }


def policy_from_json(data: Mapping[str, Any] | None, revision: int) -> Policy:
    """Inverse of :func:`policy_to_json`; ``None`` is the empty policy."""
    if not data:
        return Policy(revision=revision)
    return Policy(
        default=data.get("default"),
        versions=frozenset(str(v) for v in data.get("versions", ())),
        rules=tuple((str(t), str(v)) for t, v in data.get("rules", ())),
        rollout=rollout_from_json(data.get("rollout")),
        revision=revision,
    )


def tenant_to_json(record: TenantRecord) -> dict[str, Any]:
    """Serialise a tenant record, without its name (stores key records by name)."""
    return {
        "pin": record.pin,
        "tags": sorted(record.tags),
        "ratchet": record.ratchet,
        "state": dict(record.state),
    }


def tenant_from_json(name: str, data: Mapping[str, Any] | None) -> TenantRecord:
    """Inverse of :func:`tenant_to_json`; ``None`` is the empty record."""
    if not data:
        return TenantRecord(name)
    return TenantRecord(
        name=name,
        pin=data.get("pin"),
        tags=frozenset(str(t) for t in data.get("tags", ())),
        ratchet=data.get("ratchet"),
        state=dict(data.get("state") or {}),
    )


def audit_to_json(entry: AuditEntry) -> dict[str, Any]:
    """Serialise an audit entry."""
    return {
        "revision": entry.revision,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "tenant": entry.tenant,
        "before": entry.before,
        "after": entry.after,
    }


def audit_from_json(data: Mapping[str, Any]) -> AuditEntry:
    """Inverse of :func:`audit_to_json`."""
    return AuditEntry(
        revision=int(data["revision"]),
        at=float(data["at"]),
        actor=str(data["actor"]),
        action=str(data["action"]),
        tenant=data.get("tenant"),
        before=data.get("before"),
        after=data.get("after"),
    )

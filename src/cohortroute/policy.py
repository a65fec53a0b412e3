"""The data model: what a store holds and what a decision is computed from.

Everything here is immutable and JSON-serialisable through :func:`policy_to_json` and friends,
so every store backend persists the same shapes and the state round-trips through each of them.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .bucketing import bucket_function

# Part of the data model, so importable from here; kept in their own modules for size.
from .checks import MAX_HALT_REASON as MAX_HALT_REASON
from .checks import MAX_SALT as MAX_SALT
from .checks import check_halt_reason as check_halt_reason
from .checks import check_salt as check_salt
from .checks import check_tag_name as check_tag_name
from .checks import check_tenant_name as check_tenant_name
from .checks import check_version_name as check_version_name
from .errors import ConflictError, ValidationError, quoted
from .tenant_state import Lease as Lease
from .tenant_state import MigrationState as MigrationState
from .tenant_state import MigrationStatus as MigrationStatus


def parse_percent(value: str | float | int) -> int:
    """Parse a percentage (``5``, ``0.5``, ``"5%"``, ``"12.34"``) into basis points 0..10000.

    Resolution is 0.01 %; finer values are refused rather than silently rounded.
    """
    text = str(value).strip()
    if text.endswith("%"):
        text = text[:-1].strip()
    # ASCII digits only: \d would take any script's digits.
    match = re.fullmatch(r"([0-9]{1,3})(?:\.([0-9]{1,2}))?", text)
    if match is None:
        raise ValidationError(
            f"invalid percentage {quoted(value, 40)}: give a number from 0 to 100 with at most two "
            "decimals, like 5, 0.5 or 12.25%"
        )
    points = int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))
    if points > 10_000:
        raise ValidationError(
            f"invalid percentage {quoted(value, 40)}: it must be between 0 and 100"
        )
    return points


def format_percent(points: int) -> str:
    """Basis points as a human percentage: 500 -> '5%', 50 -> '0.5%', 1234 -> '12.34%'."""
    whole, frac = divmod(points, 100)
    return f"{whole}%" if not frac else f"{whole}.{frac:02d}".rstrip("0") + "%"


RampPlan = tuple[int, ...]
"""The percent steps of a rollout's plan, in basis points, strictly increasing (``1 -> 5 -> 25``).

Not to be confused with a tenant's *migration* steps (:class:`cohortroute.migrations.Step`)."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """The one active rollout: ``candidate`` is served to tenants whose bucket is below ``percent``.

    ``percent`` is in basis points (0..10000). ``plan`` holds the planned steps (basis points),
    ``step`` the index of the current one (-1 without a plan), ``every`` the minimum dwell per
    step in seconds, ``step_started_at`` when the current step began, and ``halted`` freezes it.

    ``auto`` makes the plan timed: the rollout moves to the next step by itself every ``every``
    seconds. Nothing is written when that happens -- every process computes the same current
    step from what is stored, through :meth:`at` (so no scheduler runs in the routers).
    ``gated`` says the candidate needs a per-tenant data migration: a tenant is only served it
    once its data has been migrated (see :mod:`cohortroute.migrations`). ``halt_reason`` says
    why a halted rollout was halted (by an operator, or by the runner past its failure limit).

    .. versionadded:: 0.1 ``auto``, ``gated`` and ``halt_reason``.
    """

    candidate: str
    percent: int
    salt: str
    started_at: float = field(default_factory=time.time)
    plan: RampPlan = ()
    step: int = -1
    every: float | None = None
    step_started_at: float | None = None
    halted: bool = False
    auto: bool = False
    gated: bool = False
    halt_reason: str | None = None
    bucketer: str = "sha256"  # cohortroute.bucketing.BUCKETERS; added in 0.2

    def at(self, now: float) -> Rollout:
        """The rollout as it stands at ``now``: timed (``auto``) plans moved on by the clock.

        A rollout that is not timed, or halted, is returned unchanged. Pure: the same stored
        rollout and the same ``now`` give the same answer in every process.
        """
        every = self.every
        start = self.step_started_at
        if not self.auto or self.halted or not every or start is None or now - start < every:
            return self
        first = next_step_index(self.plan, self.percent)
        if first is None:
            return self
        elapsed = int((now - start) // every)
        index = min(first + elapsed - 1, len(self.plan) - 1)
        return replace(
            self,
            percent=self.plan[index],
            step=index,
            step_started_at=start + (index - first + 1) * every,
        )

    def next_change(self, now: float) -> float | None:
        """When (Unix time) a timed plan next moves on by itself; None when it never will."""
        if not self.auto or self.halted or not self.every:
            return None
        current = self.at(now)
        if current.step_started_at is None or next_step_index(self.plan, current.percent) is None:
            return None
        return current.step_started_at + self.every


def next_step_index(plan: RampPlan, percent: int) -> int | None:
    """Index of the first ramp step above ``percent`` (basis points); None past the last one."""
    for index, points in enumerate(plan):
        if points > percent:
            return index
    return None


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
    #: Per version: its last mount and retirement (see :mod:`cohortroute.versions`).
    version_info: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    visitors: Mapping[str, Any] = field(default_factory=dict)  # see cohortroute.assign.visitors

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

    The keys the controller keeps in ``state`` (see ``docs/rollouts.md``):

    * ``registered`` -- Unix time the tenant entered the registry (a router served it, or it was
      imported or added);
    * ``held`` -- the salt of the rollout this tenant was rolled back from: it stays on the
      default for the rest of that rollout;
    * ``data`` -- the version the tenant's data was migrated to, during a gated rollout;
    * ``modules`` -- per module, the migration number the tenant's data is at;
    * ``migration`` -- the last or current migration: status, from, to, timings, error;
    * ``lease`` -- which runner owns the tenant's migration, and until when.
    """

    name: str
    pin: str | None = None
    tags: frozenset[str] = frozenset()
    ratchet: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the record carries nothing worth storing."""
        return self.pin is None and not self.tags and self.ratchet is None and not self.state

    @property
    def registered(self) -> bool:
        """True once the tenant is in the registry (served by a router, imported or added)."""
        return STATE_REGISTERED in self.state

    @property
    def data_version(self) -> str | None:
        """The version this tenant's data was migrated to in a gated rollout, if any."""
        value = self.state.get(STATE_DATA)
        return value if isinstance(value, str) else None

    @property
    def migration_status(self) -> str | None:
        """``migrating``, ``failed``, ``broken`` or ``ok`` for the last migration; None if none."""
        migration = self.migration
        return None if migration is None else migration.status

    @property
    def migration(self) -> MigrationState | None:
        """The last or current migration of this tenant's data, typed; None if none."""
        return MigrationState.from_json(self.state.get(STATE_MIGRATION))

    @property
    def lease(self) -> Lease | None:
        """The lease of the runner migrating this tenant (possibly expired); None if none."""
        return Lease.from_json(self.state.get(STATE_LEASE))

    @property
    def held_salt(self) -> str | None:
        """The salt of the rollout this tenant was rolled back from (it stays on the default)."""
        value = self.state.get(STATE_HELD)
        return value if isinstance(value, str) else None


STATE_REGISTERED = "registered"
STATE_HELD = "held"
STATE_DATA = "data"
STATE_MODULES = "modules"
STATE_MIGRATION = "migration"
STATE_LEASE = "lease"

#: Migration statuses during which the tenant's data is in flux: its requests get 503.
BUSY_STATUSES = frozenset({"migrating", "broken"})


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


def parse_plan(plan: Iterable[float | str]) -> RampPlan:
    """Parse a plan's ramp steps (percentages) into basis points; they must go strictly up."""
    steps = tuple(parse_percent(p) for p in plan)
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValidationError(
            "plan steps must go strictly up, like 1,5,25,50,100; got "
            + ", ".join(format_percent(s) for s in steps)
        )
    return steps


def begin_rollout(
    policy: Policy,
    candidate: str,
    *,
    percent: int,
    plan: RampPlan,
    salt: str,
    now: float,
    every: float | None = None,
    auto: bool = False,
    gated: bool = False,
    bucketer: str = "sha256",
) -> Policy:
    """The policy with a new rollout of ``candidate`` at ``percent`` basis points.

    Refuses an unknown candidate, a second rollout and rolling out the default. The current step
    is the last step of ``plan`` at or below ``percent`` (-1 before the first).
    """
    from .versions import check_serving  # versions builds on this module

    check_serving(policy, candidate)
    if policy.rollout is not None:
        raise ConflictError(
            f"a rollout of {policy.rollout.candidate} is already running; finalize or roll it "
            "back before starting another"
        )
    if candidate == policy.default:
        raise ConflictError(f"{candidate} is already the default version; nothing to roll out")
    if every is not None and not (math.isfinite(every) and every >= 0):
        raise ValidationError("every must be a non-negative number of seconds, like 7200")
    bucket_function(bucketer)  # refuses an unknown name
    check_salt(salt)
    step = max((i for i, p in enumerate(plan) if p <= percent), default=-1)
    rollout = Rollout(
        candidate=candidate,
        percent=percent,
        salt=salt,
        started_at=now,
        plan=plan,
        step=step,
        every=every,
        step_started_at=now,
        auto=auto,
        gated=gated,
        bucketer=bucketer,
    )
    return replace(policy, rollout=rollout)


def rollout_to_json(rollout: Rollout | None) -> dict[str, Any] | None:
    """Serialise a rollout (or None) to plain JSON types, as stores keep it (basis points).

    Not for output: what people and scripts read goes through :func:`rollout_to_output`.
    """
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
        "auto": rollout.auto,
        "gated": rollout.gated,
        "halt_reason": rollout.halt_reason,
        # only when not the default, so stores written before it existed read back equal
        **({} if rollout.bucketer == "sha256" else {"bucketer": rollout.bucketer}),
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
        auto=bool(data.get("auto", False)),
        gated=bool(data.get("gated", False)),
        halt_reason=None if data.get("halt_reason") is None else str(data["halt_reason"]),
        bucketer=str(data.get("bucketer", "sha256")),
    )


def percent_to_output(points: int) -> float:
    """Basis points in the unit of every JSON output: a number of percent (500 -> 5.0).

    The stored shapes (:func:`rollout_to_json`, audit entries) keep basis points; what people
    and scripts read (``--json``, :meth:`RolloutController.status`, ``Preview.to_json``) says
    percent, the unit every command and argument takes (``rollout set 12.5``).
    """
    return points / 100


def stored_rollout_to_output(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored rollout (:func:`rollout_to_json`, e.g. in an audit entry) in the output unit."""
    out = dict(data)
    if isinstance(out.get("percent"), int):
        out["percent"] = percent_to_output(out["percent"])
    plan = out.get("plan")
    if isinstance(plan, list):
        out["plan"] = [percent_to_output(p) if isinstance(p, int) else p for p in plan]
    return out


def rollout_to_output(rollout: Rollout | None, now: float) -> dict[str, Any] | None:
    """The rollout as every JSON output shows it: as routers apply it at ``now``.

    The keys of :func:`rollout_to_json` with ``percent`` and ``plan`` in percent
    (:func:`percent_to_output`), for the rollout moved on by the clock (:meth:`Rollout.at`),
    plus ``next_change``: when a timed plan next moves by itself (Unix time), else None.
    """
    if rollout is None:
        return None
    current = rollout.at(now)
    stored = rollout_to_json(current) or {}
    return {**stored_rollout_to_output(stored), "next_change": current.next_change(now)}


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """Serialise the global policy (without its revision, which stores keep separately)."""
    return {
        "default": policy.default,
        "versions": sorted(policy.versions),
        "rules": [list(rule) for rule in policy.rules],
        "rollout": rollout_to_json(policy.rollout),
        # Only when there is some: stores written before them keep their exact stored form.
        **({"version_info": dict(policy.version_info)} if policy.version_info else {}),
        **({"visitors": dict(policy.visitors)} if policy.visitors else {}),
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
        version_info={str(v): dict(i) for v, i in (data.get("version_info") or {}).items()},
        visitors=dict(data.get("visitors") or {}),
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

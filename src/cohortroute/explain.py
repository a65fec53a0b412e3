"""Why is tenant X on version Y, and what would move it: the answer, computed without I/O.

The CLI (``cohortroute explain``, ``status``) and the demo pages read the store and hand the
policy and records to these functions, so both say the same thing in the same words. Nothing
here reads a store or a clock: the caller passes ``now``.

A decision naming a version the serving routers do not mount is explained as they serve it (the
store's default, reason ``unmounted``); which versions they mount is read from the mounts routers
record in the store (:func:`serving_versions`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .decision import Decision, Reason, decide, served, split_note
from .errors import ConflictError
from .policy import Policy, Rollout, TenantRecord, format_percent
from .versions import MOUNT_REFRESH

if TYPE_CHECKING:
    from .assign.chain import Chain

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Explanation:
    """One tenant's decision with what it was made from, and the hints that would change it.

    ``at`` is the time asked about (Unix seconds); ``rollout`` the rollout as routers apply it
    then (a timed plan moved on by the clock), or None.
    """

    tenant: str
    at: float
    decision: Decision
    policy: Policy
    record: TenantRecord
    rollout: Rollout | None
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tally:
    """How the stored tenants are decided: per version, per reason, as a router would decide."""

    stored: int
    counts: dict[str, dict[str, int]]
    """version -> reason -> tenants; every known version is present, possibly empty."""

    @property
    def by_version(self) -> dict[str, int]:
        """version -> stored tenants it serves."""
        return {version: sum(reasons.values()) for version, reasons in self.counts.items()}

    @property
    def by_reason(self) -> dict[str, int]:
        """reason -> stored tenants decided for that reason."""
        totals: dict[str, int] = {}
        for reasons in self.counts.values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        return totals


def current_rollout(rollout: Rollout | None, now: float) -> Rollout | None:
    """The rollout as routers apply it at ``now``: a timed plan moved on by the clock."""
    return None if rollout is None else rollout.at(now)


def decide_for(
    policy: Policy, record: TenantRecord, now: float, chain: Chain | None = None
) -> Decision:
    """The decision a router makes for ``record`` under ``policy`` (with the store's default).

    Exactly :func:`cohortroute.decide` with the store's own default: that is the version every
    router falls back to, since a router's own default only seeds an empty store.
    """
    if policy.default is None:
        raise ConflictError(
            "the store has no default version yet: a router records its versions and default "
            "when it starts (CohortRouter(apps=..., store=URL)); start one first"
        )
    return decide(policy, record, policy.default, now=now, chain=chain)


def serving_versions(policy: Policy) -> frozenset[str] | None:
    """The versions the routers serving tenants mount, as recorded in the store; None if unknown.

    Routers record their versions with their host and the time when they start. The routers
    that serve tenants mount the store's default, so this is what the last router recorded as
    mounting the default mounted alongside it: the versions whose last mount is by the same
    host within a minute of it.
    """
    info = policy.version_info
    default = policy.default
    mount = info.get(default) if default is not None else None
    host = None if mount is None else mount.get("mounted_host")
    at = None if mount is None else mount.get("mounted_at")
    if default is None or host is None or not isinstance(at, int | float):
        return None
    found = {default}
    for version, other in info.items():
        when = other.get("mounted_at")
        if (
            other.get("mounted_host") == host
            and isinstance(when, int | float)
            and abs(when - at) < MOUNT_REFRESH
            and version in policy.versions
        ):
            found.add(version)
    return frozenset(found)


def explain(
    policy: Policy,
    record: TenantRecord,
    *,
    now: float,
    command: str = "cohortroute",
    mounted: Collection[str] | None = None,
    chain: Chain | None = None,
) -> Explanation:
    """Why ``record`` gets its version under ``policy`` at ``now``, and what would change it.

    ``command`` prefixes the commands the hints show (``cohortroute --store URL``): give it
    with the store URL already redacted. ``mounted`` are the versions the routers serving the
    tenant mount (with the store's default); :func:`serving_versions` when omitted. A decision
    naming another version is explained as those routers serve it (reason ``unmounted``).
    ``chain`` holds the routers' assignment backends (the built-ins when None).
    """
    intended = decide_for(policy, record, now, chain)
    if mounted is None:
        mounted = serving_versions(policy)
    decision = intended
    if mounted is not None and policy.default is not None:
        decision = served(intended, mounted, policy.default, policy.default)
    found = hints(intended, policy, record, now=now, command=command, chain=chain)
    if decision is not intended:
        names = (
            f"what assignment backend {intended.backend} answers"
            if intended.reason is Reason.BACKEND
            else f"the {intended.reason.value} that names it"
        )
        found.insert(
            0,
            f"{intended.version} is not mounted on the routers that serve this tenant (they "
            f"mount {', '.join(sorted(mounted or ()))}), so they serve {decision.version}: "
            f"mount {intended.version} there, or change {names}",
        )
    return Explanation(
        tenant=record.name,
        at=now,
        decision=decision,
        policy=policy,
        record=record,
        rollout=current_rollout(policy.rollout, now),
        hints=found,
    )


def tally(
    policy: Policy, records: Iterable[TenantRecord], now: float, chain: Chain | None = None
) -> Tally:
    """Decide every stored record as a router would (with ``chain``'s custom backends when
    given), and count by version and reason. A decision naming a version the routers do not
    mount (:func:`serving_versions`) is counted as they serve it, reason ``unmounted``, as
    :func:`explain` says."""
    counts: dict[str, dict[str, int]] = {version: {} for version in sorted(policy.versions)}
    mounted = serving_versions(policy)
    stored = 0
    for record in records:
        stored += 1
        if policy.default is not None:
            decision = decide(policy, record, policy.default, now=now, chain=chain)
            if mounted is not None:
                decision = served(decision, mounted, policy.default, policy.default)
            reasons = counts.setdefault(decision.version, {})
            reasons[decision.reason.value] = reasons.get(decision.reason.value, 0) + 1
    return Tally(stored=stored, counts=counts)


def _held_back_hint(
    decision: Decision, rollout: Rollout, record: TenantRecord, command: str
) -> str:
    """Why a tenant outside the rollout's buckets (a tag rule or backend wanted the candidate,
    its data did not follow) is on the default while the rollout runs."""
    if record.migration_status == "failed" and record.data_version != rollout.candidate:
        return (
            f"its migration to {rollout.candidate} failed (and was undone): fix the cause, then "
            f"`{command} rollout run --app MODULE:ATTR --retry-failed` migrates it again"
        )
    why = decision.detail or "the rollout does not reach it"
    return f"on {decision.version} while the rollout of {rollout.candidate} runs: {why}"


def hints(
    decision: Decision,
    policy: Policy,
    record: TenantRecord,
    *,
    now: float,
    command: str = "cohortroute",
    chain: Chain | None = None,
) -> list[str]:
    """Human hints on what would move the tenant, each with the command that does it.

    The hints are advice, not a contract: ``--json`` carries them as plain sentences.
    """
    name = record.name
    found: list[str] = []
    rollout = current_rollout(policy.rollout, now)
    if decision.maintenance:
        found.append(
            "its data is being migrated (or a migration failed): requests get 503 with "
            "Retry-After until that is resolved"
        )
    found.extend(f"assignment backend {error}; skipped" for error in decision.errors)
    if decision.reason is Reason.BACKEND:
        said = split_note(decision.detail)[0] or decision.version
        found.append(
            f"assignment backend {decision.backend} decided {decision.version} ({said}): change "
            "the data it reads, or a pin or tag rule ranked before it"
        )
    elif decision.reason is Reason.PIN:
        after = decide_for(policy, replace(record, pin=None), now, chain)
        found.append(
            f"pinned: `{command} unpin {name}` to release it (it would then get "
            f"{after.version}, reason {after.reason.value})"
        )
    elif decision.reason is Reason.TAG:
        rule = policy.rule_for(record.tags)
        tag = rule[0] if rule else "?"
        after = decide_for(policy, replace(record, tags=record.tags - {tag}), now, chain)
        found.append(
            f"tag rule {tag} -> {decision.version}: `{command} untag {name} {tag}` or "
            f"`{command} rule --remove {tag}` to stop it (it would then get {after.version}, "
            f"reason {after.reason.value})"
        )
        found.append(f"a pin beats tag rules: `{command} pin {name} VERSION`")
    elif rollout is not None and decision.bucket is not None:
        found.extend(_rollout_hints(decision, rollout, record, policy, command))
    elif rollout is not None:
        found.append(_held_back_hint(decision, rollout, record, command))
    else:
        found.append(
            f"on the default version ({decision.version}) and no rollout is running: "
            f"`{command} pin {name} VERSION`, a tag rule, or "
            f"`{command} rollout start VERSION --percent P` would change it"
        )
    unruled = sorted(t for t in record.tags if t not in dict(policy.rules))
    if unruled and decision.reason is not Reason.PIN:
        several = len(unruled) > 1
        found.append(
            f"its tag{'s' if several else ''} {', '.join(unruled)} "
            f"{'have' if several else 'has'} no rule: "
            f"`{command} rule {unruled[0]} VERSION` would move every tenant tagged {unruled[0]}"
        )
    return found


def _rollout_hints(
    decision: Decision, rollout: Rollout, record: TenantRecord, policy: Policy, command: str
) -> list[str]:
    """Hints for a tenant the rollout step decided: in or out by bucket, ratchet, held back."""
    name, b = record.name, decision.bucket if decision.bucket is not None else 0
    now_at = format_percent(rollout.percent)
    candidate = rollout.candidate
    if decision.version == candidate:
        found = []
        if b < rollout.percent:
            found.append(
                f"in the rollout of {candidate} while the percentage stays above "
                f"{format_percent(b)} (bucket {b}; now {now_at})"
            )
        elif record.ratchet == candidate:
            found.append(
                f"the ratchet keeps it on {candidate} even though the percentage was lowered; "
                "only a rollback moves it back"
            )
        fallback = policy.default or decision.version
        found.append(f"`{command} pin {name} {fallback}` to take it out of the rollout now")
        return found
    if record.held_salt == rollout.salt:
        return [
            f"rolled back from this rollout of {candidate}: it stays on {decision.version} "
            f"until the rollout ends; `{command} pin {name} {candidate}` moves it anyway"
        ]
    if b < rollout.percent:
        # Its bucket is in, so something else (a data migration) holds it back.
        return [f"its bucket {b} is in the rollout ({now_at}): {decision.detail}"]
    # The least percentage that reaches it; an Unleash rollout takes whole percentages only.
    reach = (b // 100 + 1) * 100 if rollout.bucketer == "unleash" else b + 1
    return [
        f"in the rollout of {candidate} once the percentage passes {format_percent(b)} "
        f"(bucket {b}; now {now_at}): `{command} rollout set {format_percent(reach)}`",
        f"`{command} pin {name} {candidate}` to move it now",
    ]

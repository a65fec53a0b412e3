"""The rollout controller: move tenants between versions safely, with their data.

:class:`RolloutController` is the operator's side of cohortroute, with the same verbs as the
CLI: ``start``, ``advance``, ``set``, ``preview``, ``halt``, ``resume``, ``run``, ``rollback``,
``finalize``, plus the tenant registry (``register``, ``import_tenants``). It works on every
store, because it only uses the generic operations of :class:`~cohortroute.store.base.Store`.

Three designs carry the safety guarantees (``docs/rollouts.md`` has the long form):

**The ratchet without a write per request.** Raising the percentage only ever adds tenants, so
nobody can bounce while it goes up or while the rollout is halted (halting freezes the
percentage). The only moment a tenant could go back is when the percentage is *lowered*: that
operation first marks every registered tenant currently served the candidate by the bucket
(``TenantRecord.ratchet``), in batched writes, and only then lowers the percentage. In a gated
rollout the tenant's migrated data is the ratchet: the runner sets it when it flips the tenant.
Only ``rollback`` clears it.

**Migrate, then flip.** A gated candidate (one whose data differs, per :class:`Migrations`) is
served to a tenant only once the runner has migrated the tenant's data. Per tenant the runner
takes a lease in the tenant's record (one atomic write that also marks it *migrating*, so
routers answer it 503 with Retry-After), waits ``drain`` seconds for every router to see the
mark, runs the steps (each completed step recorded, so a crash resumes), and flips the record
(data version, ratchet, lease released) in one last write. Any crash leaves the tenant either
migrating (503, resumable) or fully on one side.

**Timed plans without a scheduler.** ``auto`` plans store their steps and the start of the
current step; every process computes the current step with :meth:`Rollout.at`, and routers
expire their decision cache at the next step boundary.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .bucketing import bucket
from .decision import Decision, Reason, decide, intended
from .errors import ConfigurationError, ConflictError, ValidationError
from .migrations import Migrations, Step
from .policy import (
    BUSY_STATUSES,
    STATE_DATA,
    STATE_HELD,
    STATE_LEASE,
    STATE_MIGRATION,
    STATE_MODULES,
    AuditEntry,
    Policy,
    Rollout,
    TenantRecord,
    begin_rollout,
    check_tag_name,
    check_tenant_name,
    format_percent,
    next_step_index,
    parse_percent,
    parse_plan,
)
from .store.base import Store, open_store

log = logging.getLogger("cohortroute.rollout")

Outcome = Literal["moved", "unchanged", "busy", "failed", "broken", "refused", "skipped"]
FAILED_OUTCOMES = frozenset({"failed", "broken", "refused"})
_REGISTER_DELAY = 1.0  # router.REGISTER_DELAY: routers batch new tenants for this long

EventHook = Callable[[str, str], None]
"""Called as ``hook(event, tenant)`` at each point of a tenant's migration: ``leased``, ``step``,
``migrated`` (all steps done, not flipped yet), ``flipped``, ``failed``. Useful for progress
output and for tests that inject crashes."""


@dataclass(frozen=True, slots=True)
class TenantResult:
    """What happened to one tenant in a run: ``outcome``, from -> to, error and duration."""

    tenant: str
    outcome: Outcome
    from_version: str | None = None
    to_version: str | None = None
    error: str | None = None
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        """True when this tenant did not reach where it was asked to go."""
        return self.outcome in FAILED_OUTCOMES

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` output."""
        return {
            "tenant": self.tenant,
            "outcome": self.outcome,
            "from": self.from_version,
            "to": self.to_version,
            "error": self.error,
            "duration": round(self.duration, 3),
        }


@dataclass
class RunResult:
    """The outcome of a batch (``run``, ``rollback``, ``finalize``): per tenant, and overall.

    ``ok`` is False when any tenant failed or the operation could not complete; ``summary()``
    is the text an operator reads.
    """

    action: str
    results: list[TenantResult] = field(default_factory=list)
    halted: str | None = None
    completed: bool = True
    note: str = ""

    def _having(self, *outcomes: str) -> list[TenantResult]:
        return [r for r in self.results if r.outcome in outcomes]

    @property
    def moved(self) -> list[str]:
        """Tenants that moved (their data migrated and flipped, or moved back)."""
        return [r.tenant for r in self._having("moved")]

    @property
    def failures(self) -> list[TenantResult]:
        """Tenants that failed (stayed where they were, or broken), with their errors."""
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        """True when nothing failed and the operation completed."""
        return self.completed and not self.failures

    def summary(self) -> str:
        """A few lines for people: counts, each failure with its error, and what to do next."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        parts = [f"{n} {outcome}" for outcome, n in sorted(counts.items())] or ["no tenant to move"]
        lines = [f"{self.action}: {', '.join(parts)}" + (" -- FAILED" if not self.ok else "")]
        for r in self.failures:
            move = f"{r.from_version} -> {r.to_version}"
            lines.append(f"  {r.tenant}: {r.outcome} ({move}): {r.error}")
        if self.halted:
            lines.append(f"  the rollout was halted: {self.halted}")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` output."""
        return {
            "action": self.action,
            "ok": self.ok,
            "completed": self.completed,
            "halted": self.halted,
            "note": self.note,
            "moved": self.moved,
            "failed": [r.to_json() for r in self.failures],
            "results": [r.to_json() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class Preview:
    """Exactly which registered tenants move when the rollout goes to ``to_percent``.

    ``moves`` are the tenants whose version changes (sorted), with ``migrate`` the subset whose
    data needs a migration first (gated rollouts: they move when ``run`` migrates them).
    ``stays`` lists tenants whose bucket enters the new range but who do not move, and why
    (pinned, tagged, rolled back, already kept by the ratchet).
    """

    candidate: str
    default: str
    from_percent: int
    to_percent: int
    step: int | None
    moves: tuple[str, ...]
    migrate: tuple[str, ...]
    stays: Mapping[str, str]
    considered: int

    @property
    def count(self) -> int:
        """How many tenants move."""
        return len(self.moves)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``rollout preview --json``."""
        return {
            "candidate": self.candidate,
            "default": self.default,
            "from_percent": format_percent(self.from_percent),
            "to_percent": format_percent(self.to_percent),
            "step": self.step,
            "count": self.count,
            "moves": list(self.moves),
            "migrate": list(self.migrate),
            "stays": dict(self.stays),
            "considered": self.considered,
        }


@dataclass(frozen=True, slots=True)
class _Job:
    """One tenant's pending move, computed inside the lease transaction."""

    source: str
    target: str
    start_modules: dict[str, int]
    target_modules: dict[str, int]
    steps: tuple[Step, ...]
    resume: bool
    hold: str | None


class _Abort(Exception):
    """The runner lost its lease: another runner owns the tenant now."""


class RolloutController:
    """Run rollouts on a store: plans, the ratchet, per-tenant migrations, rollback, finalize.

    :param store: a store URL or :class:`~cohortroute.store.base.Store`.
    :param migrations: the app's :class:`~cohortroute.migrations.Migrations`; a candidate whose
        module versions differ from the default's makes the rollout *gated*.
    :param actor: who to record in the audit log (``$USER`` by default).
    :param lease_ttl: seconds a runner's lease on a tenant lasts without renewal; a killed
        runner's lease frees itself after this. A heartbeat renews it during long steps.
    :param refresh_interval: the routers' refresh interval, when they were built with one other
        than the store's default (``CohortRouter(refresh_interval=...)``); sets the defaults of
        ``drain`` and ``settle``.
    :param drain: seconds between marking a tenant *migrating* and touching its data, so every
        router has seen the mark and in-flight requests finished. **The migrate-then-flip
        guarantee holds only when this is at least the routers' refresh interval plus the
        longest request.** Default: twice the routers' refresh interval.
    :param settle: seconds to wait before the last scan of a lowering or finalize, so routers
        have flushed the tenants they just served into the registry. Default: the routers'
        registration delay (1 s) plus twice the routers' refresh interval.
    :param clock: Unix time source (tests inject a fake one); ``sleep`` likewise.
    :param on_event: ``hook(event, tenant)`` at each point of a migration (see :data:`EventHook`).
    """

    def __init__(
        self,
        store: str | Store,
        *,
        migrations: Migrations | None = None,
        actor: str | None = None,
        lease_ttl: float = 60.0,
        refresh_interval: float | None = None,
        drain: float | None = None,
        settle: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_event: EventHook | None = None,
    ) -> None:
        self.store = open_store(store)
        self.migrations = migrations
        if migrations is not None:
            migrations.check()
        self.actor = actor
        if lease_ttl <= 0:
            raise ValidationError("lease_ttl must be a positive number of seconds")
        self.lease_ttl = float(lease_ttl)
        interval = self.store.refresh_interval if refresh_interval is None else refresh_interval
        self.drain = 2 * interval if drain is None else float(drain)
        if self.drain < interval:
            log.warning(
                "cohortroute: drain=%gs is shorter than the routers' refresh interval (%gs): a "
                "router that has not refreshed yet could serve a tenant the old version while "
                "its data migrates. Use drain >= the routers' refresh interval plus your "
                "longest request (or tell the controller refresh_interval= if the routers use "
                "a shorter one than the store's default).",
                self.drain,
                interval,
            )
        self.settle = _REGISTER_DELAY + 2 * interval if settle is None else float(settle)
        self._clock = clock
        self._sleep = sleep
        self._on_event = on_event
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    # --- reading ------------------------------------------------------------------------------

    def current(self) -> Rollout | None:
        """The running rollout as it stands now (a timed plan moved on by the clock), or None."""
        rollout = self.store.policy().rollout
        return None if rollout is None else rollout.at(self._clock())

    def explain(self, tenant: str) -> Decision:
        """The decision for ``tenant`` now, as a router would make it (without mounting check)."""
        name = check_tenant_name(tenant)
        policy = self.store.policy()
        return decide(policy, self.store.tenant(name), policy.default or "", now=self._clock())

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """A tenant's story (or the whole log), newest first: every move, migration and mark."""
        name = None if tenant is None else check_tenant_name(tenant)
        return self.store.history(name, limit)

    def status(self) -> dict[str, Any]:
        """The rollout as it stands, and tenants per state: registered, migrated, failing..."""
        policy = self.store.policy()
        now = self._clock()
        rollout = None if policy.rollout is None else policy.rollout.at(now)
        counts = {"registered": 0, "ratchet": 0, "migrated": 0, "migrating": 0, "held": 0}
        failed: dict[str, str] = {}
        for record in self.store.tenants():
            counts["registered"] += record.registered
            if rollout is not None:
                counts["ratchet"] += record.ratchet == rollout.candidate
                counts["migrated"] += record.data_version == rollout.candidate
                counts["held"] += record.held_salt == rollout.salt
            status = record.migration_status
            counts["migrating"] += status == "migrating"
            if status in ("failed", "broken"):
                migration = record.state.get(STATE_MIGRATION) or {}
                failed[record.name] = f"{status}: {migration.get('error')}"
        out: dict[str, Any] = {"default": policy.default, "tenants": counts, "failed": failed}
        if rollout is None:
            out["rollout"] = None
        else:
            out["rollout"] = {
                "candidate": rollout.candidate,
                "percent": format_percent(rollout.percent),
                "plan": [format_percent(p) for p in rollout.plan],
                "step": rollout.step,
                "every": rollout.every,
                "auto": rollout.auto,
                "gated": rollout.gated,
                "halted": rollout.halted,
                "halt_reason": rollout.halt_reason,
                "next_change": rollout.next_change(now),
            }
        return out

    # --- the registry ---------------------------------------------------------------------

    def register(
        self,
        tenants: Iterable[str],
        *,
        tags: Mapping[str, Iterable[str]] | None = None,
        batch_size: int = 10_000,
    ) -> int:
        """Add tenants (and tags) to the registry; returns how many were new."""
        return self.store.register_tenants(
            tenants, tags=tags, batch_size=batch_size, actor=self.actor
        )

    def add_tenant(self, tenant: str, tags: Iterable[str] = ()) -> bool:
        """Add one tenant (with tags) to the registry; True when it was new."""
        name = check_tenant_name(tenant)
        labels = [check_tag_name(t) for t in tags]
        new = self.store.register_tenants(
            [name], tags={name: labels}, audit_each=True, actor=self.actor
        )
        return new == 1

    def import_tenants(
        self, source: str | os.PathLike[str] | Iterable[str], *, batch_size: int = 50_000
    ) -> int:
        """Import tenants from a file (or lines): one name per line, or CSV ``name,tag,tag...``.

        Blank lines and ``#`` comments are skipped, as is a header row whose first cell is
        ``tenant`` or ``name``; a tag cell may hold several tags separated by spaces, ``;`` or
        ``|``. Every name is validated before anything is written, then the tenants are written
        ``batch_size`` per transaction. Returns how many tenants were new.
        """
        names, tags = parse_tenant_lines(_lines(source))
        return self.register(names, tags=tags, batch_size=batch_size)

    # --- plans and progression ------------------------------------------------------------

    def start(
        self,
        candidate: str,
        *,
        plan: Iterable[float | str] = (),
        percent: float | str | None = None,
        every: float | None = None,
        auto: bool = False,
        salt: str | None = None,
    ) -> Rollout:
        """Start rolling out ``candidate``: at ``percent``, or at the first step of ``plan``.

        ``plan`` lists percentages that go strictly up (``[1, 5, 25, 50, 100]``); ``every`` is
        the minimum dwell per step in seconds (``advance`` refuses earlier unless forced); with
        ``auto`` the plan moves on by itself every ``every`` seconds. When the app's migrations
        say the candidate's data differs from the default's, the rollout is *gated*: tenants
        are served the candidate only once ``run`` has migrated them.
        """
        steps = parse_plan(plan)
        first = steps[0] if steps else 0
        points = parse_percent(percent) if percent is not None else first
        if auto and (not steps or not every):
            raise ValidationError("a timed (auto) rollout needs a plan and every=SECONDS")
        salt = salt if salt is not None else f"{candidate}:{secrets.token_hex(8)}"
        now = self._clock()

        def update(policy: Policy) -> Policy:
            gated = self.migrations is not None and self.migrations.needs_migration(
                policy.default or "", candidate
            )
            return begin_rollout(
                policy,
                candidate,
                percent=points,
                plan=steps,
                salt=salt,
                now=now,
                every=every,
                auto=auto,
                gated=gated,
            )

        self._clear_stale_ratchets()
        self._commit_policy("rollout-start", update)
        return self._require(self.store.policy())

    def preview(self, percent: float | str | None = None) -> Preview:
        """Dry run: exactly which registered tenants move at the next step (or at ``percent``).

        Computed with the router's own :func:`~cohortroute.decision.decide` and bucket function
        over every tenant the store knows, including pins, tag rules, rolled-back tenants and
        ratchets (which keep tenants where they are when the percentage goes down).
        """
        policy = self.store.policy()
        rollout = self._require(policy)
        now = self._clock()
        current = rollout.at(now)
        target, step = self._target(current, percent)
        before = replace(policy, rollout=replace(current, auto=False))
        after = replace(policy, rollout=replace(current, auto=False, percent=target))
        lowering = target < current.percent
        default = policy.default or ""
        moves: list[str] = []
        migrate: list[str] = []
        stays: dict[str, str] = {}
        considered = 0
        for record in self.store.tenants():
            considered += 1
            old = intended(before, record, default)
            if lowering and not current.gated and _ratchets(old, current, record):
                record = replace(record, ratchet=current.candidate)  # what set() marks first
            new = intended(after, record, default)
            migrated = record.data_version == current.candidate
            if (
                new.version != old.version
                and current.gated
                and not migrated
                and (old.version == current.candidate)
            ):
                # Only scheduled for a migration, never served the candidate: nothing moves.
                stays[record.name] = f"not migrated yet, so it stays on {default}"
            elif new.version != old.version:
                moves.append(record.name)
                if current.gated and new.version == current.candidate and not migrated:
                    migrate.append(record.name)
            elif new.bucket is not None and _between(new.bucket, current.percent, target):
                stays[record.name] = new.detail
        return Preview(
            candidate=current.candidate,
            default=default,
            from_percent=current.percent,
            to_percent=target,
            step=step,
            moves=tuple(moves),
            migrate=tuple(migrate),
            stays=stays,
            considered=considered,
        )

    def advance(self, *, force: bool = False) -> Rollout:
        """Move to the next step of the plan; refused before the step's minimum dwell unless
        ``force``."""
        policy = self.store.policy()
        rollout = self._require(policy)
        now = self._clock()
        current = rollout.at(now)
        if current.halted:
            raise ConflictError(
                "the rollout is halted; `cohortroute rollout resume` it before advancing"
                + (f" (halted because: {current.halt_reason})" if current.halt_reason else "")
            )
        if not current.plan:
            raise ConflictError(
                "this rollout has no plan; use `cohortroute rollout set PERCENT` to change it"
            )
        index = next_step_index(current.plan, current.percent)
        if index is None:
            raise ConflictError(
                f"the rollout is at the last step of its plan ({format_percent(current.percent)});"
                " `cohortroute rollout finalize` makes the candidate the default"
            )
        started = current.step_started_at
        if not force and current.every and started is not None and now - started < current.every:
            wait = current.every - (now - started)
            raise ConflictError(
                f"step {format_percent(current.percent)} started {_duration(now - started)} ago "
                f"and the plan's minimum dwell is {_duration(current.every)}: wait "
                f"{_duration(wait)} more, or pass force=True (--force) to advance now"
            )
        self._change_percent(rollout, current, current.plan[index], index, "rollout-advance")
        return self._require(self.store.policy())

    def set(self, percent: float | str) -> Rollout:
        """Jump to ``percent``. Lowering keeps every tenant already on the candidate there
        (the ratchet); raising is refused while the rollout is halted."""
        points = parse_percent(percent)
        policy = self.store.policy()
        rollout = self._require(policy)
        current = rollout.at(self._clock())
        if points == current.percent:
            return current
        if points > current.percent and current.halted:
            raise ConflictError(
                "the rollout is halted; resume it before raising the percentage "
                "(lowering is allowed while halted)"
            )
        step = max((i for i, p in enumerate(current.plan) if p <= points), default=-1)
        lowering = points < current.percent
        if lowering and not current.gated:
            self._mark_ratchets(current, points)
        # After the marks a lowering moves no registered tenant: skip that audit scan.
        self._change_percent(rollout, current, points, step, "rollout-set", audit=not lowering)
        return self._require(self.store.policy())

    def halt(self, reason: str | None = None) -> Rollout:
        """Freeze the rollout where it is (a timed plan stops moving on; ``run`` migrates no one
        new). Nobody moves: the percentage stays, so nobody leaves the candidate."""
        now = self._clock()

        def update(policy: Policy) -> Policy:
            rollout = self._require(policy).at(now)
            if rollout.halted and rollout.halt_reason == reason:
                return policy
            return replace(policy, rollout=replace(rollout, halted=True, halt_reason=reason))

        self.store.update_policy("rollout-halt", update, actor=self.actor)
        return self._require(self.store.policy())

    def resume(self) -> Rollout:
        """Continue a halted rollout; a timed plan's current step starts its dwell again."""
        now = self._clock()

        def update(policy: Policy) -> Policy:
            rollout = self._require(policy)
            if not rollout.halted:
                return policy
            new = replace(rollout, halted=False, halt_reason=None, step_started_at=now)
            return replace(policy, rollout=new)

        self.store.update_policy("rollout-resume", update, actor=self.actor)
        return self._require(self.store.policy())

    # --- migrations -------------------------------------------------------------------------

    def run(
        self,
        *,
        concurrency: int = 4,
        max_failures: int = 5,
        retry_failed: bool = False,
        tenants: Iterable[str] | None = None,
        progress: Callable[[TenantResult], None] | None = None,
    ) -> RunResult:
        """Migrate every tenant the rollout has reached but whose data is not there yet.

        Also resumes migrations a crashed runner left behind (once their lease expired).
        Tenants run ``concurrency`` at a time; a failing tenant stays on its old version with
        its data restored and the batch goes on, but when more than ``max_failures`` fail the
        rollout is halted and no further tenant starts. Tenants whose last attempt failed are
        retried only with ``retry_failed``. ``progress(result)`` is called as each one ends.
        """
        policy = self.store.policy()
        rollout = self._require(policy)
        self._require_migrations(rollout)
        self._discover()
        if not rollout.gated:
            return RunResult("run", note=f"{rollout.candidate} needs no data migration")
        wanted = None if tenants is None else {check_tenant_name(t) for t in tenants}
        now = self._clock()
        names = [
            record.name
            for record in self.store.tenants()
            if (wanted is None or record.name in wanted)
            and self._pending(policy, record, now, retry_failed=retry_failed)
        ]
        result = self._batch(
            "run", names, "forward", concurrency, max_failures, progress, retry_failed=retry_failed
        )
        if rollout.halted:
            result.note = "the rollout is halted: only interrupted migrations were resumed"
        return result

    def migrate(self, tenant: str, *, retry_failed: bool = True) -> TenantResult:
        """Migrate one tenant now if the rollout has reached it (the single-tenant ``run``)."""
        self._require_migrations(self._require(self.store.policy()))
        return self._move(check_tenant_name(tenant), "forward", retry_failed=retry_failed)

    # --- rollback and finalize --------------------------------------------------------------

    def rollback(
        self,
        tenant: str | None = None,
        *,
        force: bool = False,
        concurrency: int = 4,
        progress: Callable[[TenantResult], None] | None = None,
    ) -> RunResult:
        """Move tenants back to the default: the whole rollout, or one ``tenant``.

        The whole rollout: halt it, move every migrated tenant's data back (downgrade steps),
        then end the rollout and clear the ratchet marks. One tenant: move it back and keep it
        on the default for the rest of this rollout. A tenant whose migration has no downgrade
        is refused, before anything moves, unless ``force`` (its data is then left as it is).
        """
        policy = self.store.policy()
        rollout = self._require(policy)
        self._require_migrations(rollout)
        if tenant is not None:
            return self._rollback_one(policy, rollout, check_tenant_name(tenant), force)
        result = RunResult("rollback")
        if rollout.gated:
            records = [
                r
                for r in self.store.tenants()
                if r.data_version == rollout.candidate or r.migration_status in BUSY_STATUSES
            ]
            if not force:
                self._refuse_missing_downgrades(policy, records)
            self.halt("rolling back")
            result = self._batch(
                "rollback",
                [r.name for r in records],
                "back",
                concurrency,
                None,
                progress,
                force=force,
            )
            if result.failures:
                result.completed = False
                result.note = (
                    "the rollout stays halted: fix the failed tenants, then roll back again"
                )
                return result

        def update(p: Policy) -> Policy:
            if p.rollout is None or p.rollout.salt != rollout.salt:
                raise ConflictError("the rollout changed meanwhile; check `status` and retry")
            return replace(p, rollout=None)

        result.results.extend(self._commit_policy("rollout-rollback", update))
        self._clear_marks(rollout, "rollback-clear")
        result.note = f"the rollout of {rollout.candidate} ended; everybody is on {policy.default}"
        return result

    def finalize(
        self,
        *,
        force: bool = False,
        concurrency: int = 4,
        progress: Callable[[TenantResult], None] | None = None,
    ) -> RunResult:
        """Everybody to the candidate; the candidate becomes the default; one version serves all.

        Migrates every tenant whose data is not at the candidate yet (a failure stops finalize
        with the rollout at 100 %, so nothing is lost), then makes the candidate the default,
        ends the rollout and clears the ratchet and migration marks. Pins and tag rules that
        point at the old default would keep tenants on it: finalize refuses unless ``force``,
        which removes them.
        """
        policy = self.store.policy()
        rollout = self._require(policy)
        self._require_migrations(rollout)
        old = policy.default
        pinned = [r.name for r in self.store.tenants() if old is not None and r.pin == old]
        rules = [tag for tag, version in policy.rules if version == old]
        if (pinned or rules) and not force:
            parts = []
            if pinned:
                shown = ", ".join(pinned[:10]) + (" ..." if len(pinned) > 10 else "")
                parts.append(f"{len(pinned)} tenant(s) are pinned to {old} ({shown})")
            if rules:
                parts.append(f"tag rule(s) {', '.join(rules)} send tenants to {old}")
            raise ConflictError(
                f"{' and '.join(parts)}, so finalize could not move everybody to "
                f"{rollout.candidate}: unpin them / remove the rules, or pass force=True "
                "(--force) to remove them as part of finalize"
            )
        for name in pinned:
            self.store.unpin(name, actor=self.actor)
        for tag in rules:
            self.store.remove_rule(tag, actor=self.actor)

        def everybody(p: Policy) -> Policy:
            r = self._require(p)
            if r.salt != rollout.salt:
                raise ConflictError("the rollout changed meanwhile; check `status` and retry")
            return replace(
                p,
                rollout=replace(
                    r.at(self._clock()), percent=10_000, halted=False, halt_reason=None, auto=False
                ),
            )

        result = RunResult("finalize", self._commit_policy("rollout-finalize-start", everybody))
        self._clear_held(rollout, old)
        if rollout.gated:
            self._discover()
            for attempt in itertools.count():
                current = self.store.policy()
                now = self._clock()
                names = [
                    r.name
                    for r in self.store.tenants()
                    if self._pending(current, r, now, retry_failed=True)
                ]
                if not names:
                    if attempt > 0 or self.settle <= 0:
                        break
                    self._sleep(self.settle)  # let routers flush tenants they just served
                    continue
                batch = self._batch(
                    "finalize", names, "forward", concurrency, None, progress, retry_failed=True
                )
                result.results.extend(batch.results)
                if batch.failures or any(r.outcome == "busy" for r in batch.results):
                    result.completed = False
                    result.note = (
                        f"the rollout stays at 100 % with {rollout.candidate} not yet the "
                        "default: fix the failed (or busy) tenants, then finalize again"
                    )
                    return result
                if self.settle > 0:
                    self._sleep(self.settle)

        def commit(p: Policy) -> Policy:
            r = self._require(p)
            if r.salt != rollout.salt:
                raise ConflictError("the rollout changed meanwhile; check `status` and retry")
            return replace(p, default=r.candidate, rollout=None)

        self.store.update_policy("rollout-finalize", commit, actor=self.actor)
        self._clear_marks(rollout, "finalize-clear")
        result.note = f"{rollout.candidate} is the default now and serves everybody"
        return result

    # --- internals: percentages and the ratchet ----------------------------------------------

    def _require(self, policy: Policy) -> Rollout:
        if policy.rollout is None:
            raise ConflictError(
                "no rollout is running; start one with `cohortroute rollout start VERSION`"
            )
        return policy.rollout

    def _require_migrations(self, rollout: Rollout) -> None:
        """A gated rollout moves data: refuse to touch it without the app's migrations."""
        if rollout.gated and self.migrations is None:
            raise ConfigurationError(
                f"the rollout of {rollout.candidate} is gated (tenants' data must be migrated), "
                "but this controller has no migrations: pass migrations= "
                "(CLI: --app module:attr naming your Migrations)"
            )

    def pending(self, *, retry_failed: bool = False) -> list[str]:
        """The tenants ``run`` would migrate now (a dry run of its selection)."""
        policy = self.store.policy()
        now = self._clock()
        return [
            r.name
            for r in self.store.tenants()
            if self._pending(policy, r, now, retry_failed=retry_failed)
        ]

    def _target(self, current: Rollout, percent: float | str | None) -> tuple[int, int | None]:
        if percent is not None:
            points = parse_percent(percent)
            return points, (current.plan.index(points) if points in current.plan else None)
        index = next_step_index(current.plan, current.percent)
        if index is None:
            raise ConflictError(
                "there is no next step to preview (no plan, or at its last step); "
                "preview a percentage instead, like preview(50)"
            )
        return current.plan[index], index

    def _change_percent(
        self,
        stored: Rollout,
        current: Rollout,
        points: int,
        step: int,
        action: str,
        *,
        audit: bool = True,
    ) -> None:
        now = self._clock()

        def update(policy: Policy) -> Policy:
            if policy.rollout != stored:
                raise ConflictError(
                    "the rollout changed while this command ran; check `status` and retry"
                )
            return replace(
                policy,
                rollout=replace(current, percent=points, step=step, step_started_at=now),
            )

        self._commit_policy(action, update, audit=audit)

    def _commit_policy(
        self, action: str, update: Callable[[Policy], Policy], *, audit: bool = True
    ) -> list[TenantResult]:
        """Commit a policy change with one audit entry per tenant it moves.

        The moves are computed before the transaction (a full scan must not hold the store's
        write lock); ``update`` refuses inside the transaction if the rollout changed meanwhile.
        """
        before = self.store.policy()
        after = update(before)  # validates early, outside the transaction
        moves = [] if after == before or not audit else list(self._moves_between(before, after))
        self.store.update_policy(action, update, moves=lambda b, a: moves, actor=self.actor)
        return [TenantResult(name, "moved", old, new["version"]) for name, old, new in moves]

    def _moves_between(self, before: Policy, after: Policy) -> Iterator[tuple[str, Any, Any]]:
        """Audit entries for the tenants a non-gated policy change moves (gated ones are
        audited by the runner when their data moves)."""
        now = self._clock()
        if any(p.rollout is not None and p.rollout.gated for p in (before, after)):
            return
        default = before.default or after.default or ""
        for record in self.store.tenants():
            old = decide(before, record, default, now=now)
            new = decide(after, record, default, now=now)
            if old.version != new.version:
                yield record.name, old.version, {"version": new.version, "why": new.detail}

    def _mark_ratchets(self, current: Rollout, points: int) -> None:
        """Before lowering to ``points``: mark every tenant served the candidate by its bucket."""
        if self.settle > 0:
            self._sleep(self.settle)  # let routers flush the tenants they just served
        policy = replace(self.store.policy(), rollout=replace(current, auto=False))
        default = policy.default or ""
        names = [
            record.name
            for record in self.store.tenants()
            if _ratchets(intended(policy, record, default), current, record)
            and (record.ratchet != current.candidate)
            and bucket_at_least(current, record.name, points)
        ]

        def mark(record: TenantRecord, p: Policy) -> TenantRecord:
            if p.rollout is None or p.rollout.salt != current.salt:
                raise ConflictError("the rollout changed meanwhile; check `status` and retry")
            return replace(record, ratchet=current.candidate)

        self.store.update_tenants(
            names,
            "ratchet",
            mark,
            describe=lambda b, a: (b.ratchet, a.ratchet),
            actor=self.actor,
        )

    def _clear_stale_ratchets(self) -> None:
        """Ratchet marks left by an interrupted rollback or finalize must not leak into a new
        rollout of the same candidate."""
        names = [r.name for r in self.store.tenants() if r.ratchet is not None]
        self.store.update_tenants(
            names,
            "ratchet-clear",
            lambda r, p: replace(r, ratchet=None) if p.rollout is None else r,
            audit_each=False,
            actor=self.actor,
        )

    def _clear_held(self, rollout: Rollout, default: str | None) -> None:
        """Finalize takes rolled-back tenants along too; each one's history says so."""
        names = [r.name for r in self.store.tenants() if r.held_salt == rollout.salt]
        after = "once migrated" if rollout.gated else rollout.candidate
        self.store.update_tenants(
            names,
            "finalize-unhold",
            _without_keys(STATE_HELD),
            describe=lambda b, a: ({"version": default, "held": True}, {"version": after}),
            actor=self.actor,
        )

    def _clear_marks(self, rollout: Rollout, action: str) -> None:
        """After the rollout ended: drop its ratchets, held marks and data marks."""
        names = [
            r.name
            for r in self.store.tenants()
            if r.ratchet is not None or r.held_salt == rollout.salt or r.data_version is not None
        ]
        strip = _without_keys(STATE_HELD, STATE_DATA)

        def clear(record: TenantRecord, policy: Policy) -> TenantRecord:
            if policy.rollout is not None:
                return record  # a new rollout started meanwhile: leave its marks alone
            return replace(strip(record, policy), ratchet=None)

        self.store.update_tenants(names, action, clear, audit_each=False, actor=self.actor)

    # --- internals: rollback of one tenant ---------------------------------------------------

    def _rollback_one(self, policy: Policy, rollout: Rollout, name: str, force: bool) -> RunResult:
        record = self.store.tenant(name)
        default = policy.default or ""
        held = replace(record, state={**record.state, STATE_HELD: rollout.salt}, ratchet=None)
        still = intended(policy, held, default, now=self._clock())
        if still.version == rollout.candidate:
            raise ConflictError(
                f"{name} would stay on {rollout.candidate} after a rollback ({still.detail}): "
                f"unpin or untag it first"
            )
        result = RunResult("rollback")
        if rollout.gated and (
            record.data_version == rollout.candidate or record.migration_status in BUSY_STATUSES
        ):
            if not force:
                self._refuse_missing_downgrades(policy, [record])
            result.results.append(self._move(name, "back", force=force, hold=True))
            return result
        before = decide(policy, record, default, now=self._clock())

        def update(r: TenantRecord, p: Policy) -> TenantRecord:
            if p.rollout is None or p.rollout.salt != rollout.salt:
                raise ConflictError("the rollout changed meanwhile; check `status` and retry")
            return replace(r, state={**r.state, STATE_HELD: rollout.salt}, ratchet=None)

        self.store.update_tenants(
            [name],
            "rollback",
            update,
            describe=lambda b, a: ({"version": before.version}, {"version": default, "held": True}),
            actor=self.actor,
        )
        moved = before.version != default
        result.results.append(
            TenantResult(name, "moved" if moved else "unchanged", before.version, default)
        )
        return result

    def _refuse_missing_downgrades(self, policy: Policy, records: Iterable[TenantRecord]) -> None:
        missing: dict[str, list[str]] = {}
        target = self._modules_for(policy.default or "")
        for record in records:
            steps = self._plan(self._modules_of(policy, record), target)
            gaps = [str(s) for s in steps if s.run is None]
            if gaps:
                missing[record.name] = gaps
        if missing:
            first = next(iter(missing.items()))
            raise ConflictError(
                f"cannot roll back {len(missing)} tenant(s) ({', '.join(list(missing)[:10])}): "
                f"their migration has no downgrade for {', '.join(first[1])}. Declare the "
                "downgrade step(s) with @migrations.downgrade(...), or pass force=True "
                "(--force) to move them back leaving those changes in their data"
            )

    # --- internals: the migration runner ------------------------------------------------------

    def _modules_for(self, version: str) -> dict[str, int]:
        return {} if self.migrations is None else self.migrations.modules_for(version)

    def _modules_of(self, policy: Policy, record: TenantRecord) -> dict[str, int]:
        """The module versions a tenant's data is at: recorded, or else the default's."""
        stored = record.state.get(STATE_MODULES)
        if isinstance(stored, Mapping):
            return {str(k): int(v) for k, v in stored.items() if int(v)}
        return self._modules_for(policy.default or "")

    def _plan(self, current: Mapping[str, int], target: Mapping[str, int]) -> list[Step]:
        return [] if self.migrations is None else self.migrations.plan(current, target)

    def _discover(self) -> None:
        if self.migrations is not None and self.migrations.discover is not None:
            self.register(self.migrations.discover())

    def _pending(
        self, policy: Policy, record: TenantRecord, now: float, *, retry_failed: bool
    ) -> bool:
        """A cheap first look; the lease transaction decides for real."""
        rollout = policy.rollout
        if rollout is None or not rollout.gated:
            return False
        status = record.migration_status
        if status in BUSY_STATUSES:
            return True
        if rollout.halted or record.data_version == rollout.candidate:
            return False
        if status == "failed" and not retry_failed:
            migration = record.state.get(STATE_MIGRATION) or {}
            if migration.get("to") == rollout.candidate:
                return False
        return intended(policy, record, policy.default or "", now=now).version == (
            rollout.candidate
        )

    def _job(
        self,
        policy: Policy,
        record: TenantRecord,
        mode: str,
        *,
        force: bool,
        hold: bool,
        retry_failed: bool,
    ) -> _Job | str | None:
        """What moving this tenant takes now: a job, a refusal message, or None (nothing)."""
        rollout = policy.rollout
        if rollout is None or not rollout.gated:
            return None
        default = policy.default or ""
        migration = record.state.get(STATE_MIGRATION)
        migration = migration if isinstance(migration, Mapping) else {}
        busy = record.migration_status in BUSY_STATUSES
        source = rollout.candidate if record.data_version == rollout.candidate else default
        if mode == "back":
            target = default
            if not busy and source == default and not hold:
                return None
        elif busy:
            target = str(migration.get("to") or rollout.candidate)
            source = str(migration.get("from") or source)
        else:
            if not self._pending(policy, record, self._clock(), retry_failed=retry_failed):
                return None
            target = rollout.candidate
        current = self._modules_of(policy, record)
        wanted = self._modules_for(target)
        steps = self._plan(current, wanted)
        gaps = [str(s) for s in steps if s.run is None]
        if gaps and not force:
            return (
                f"no downgrade is declared for {', '.join(gaps)}; declare it, or force the "
                "rollback to leave those changes in the tenant's data"
            )
        return _Job(
            source=source,
            target=target,
            start_modules=current,
            target_modules=wanted,
            steps=tuple(steps),
            resume=busy,
            hold=rollout.salt if hold else _str_or_none(migration.get("hold") if busy else None),
        )

    def _move(
        self,
        name: str,
        mode: str,
        *,
        force: bool = False,
        hold: bool = False,
        retry_failed: bool = False,
    ) -> TenantResult:
        """Move one tenant's data (``forward`` to the candidate, ``back`` to the default).

        Lease + *migrating* mark in one write; drain; steps, each recorded; flip. Exactly one
        runner works on a tenant at a time, and pending work is recomputed inside the lease
        transaction, so a second runner finds nothing left to do.
        """
        token = f"{self._owner}:{secrets.token_hex(4)}"
        started = self._clock()
        box: dict[str, Any] = {}

        def take(record: TenantRecord, policy: Policy) -> TenantRecord:
            box.clear()
            now = self._clock()
            lease = record.state.get(STATE_LEASE)
            if isinstance(lease, Mapping) and float(lease.get("expires", 0)) > now:
                box["busy"] = str(lease.get("owner"))
                return record
            job = self._job(policy, record, mode, force=force, hold=hold, retry_failed=retry_failed)
            if not isinstance(job, _Job):
                box["refused" if isinstance(job, str) else "noop"] = job
                return record
            box["job"] = job
            state = dict(record.state)
            state[STATE_LEASE] = {"owner": token, "expires": now + self.lease_ttl}
            state[STATE_MIGRATION] = {
                "status": "migrating",
                "from": job.source,
                "to": job.target,
                "started": now,
                "steps": [str(s) for s in job.steps],
                "hold": job.hold,
            }
            return replace(record, state=state)

        self._write(name, "migration-start", take, _describe_start)
        if "busy" in box:
            return TenantResult(name, "busy", error=f"another runner holds it ({box['busy']})")
        if "refused" in box:
            return TenantResult(name, "refused", error=str(box["refused"]))
        if "job" not in box:
            return TenantResult(name, "unchanged")
        job: _Job = box["job"]
        self._event("leased", name)
        with _Heartbeat(self, name, token):
            try:
                if not job.resume and job.steps and self.drain > 0:
                    self._sleep(self.drain)  # every router sees "migrating" before data moves
                error = self._run_steps(name, token, job, force)
            except _Abort as exc:
                return TenantResult(
                    name, "failed", job.source, job.target, str(exc), self._clock() - started
                )
            if error is not None:
                return self._fail(name, token, job, error, started)
            self._event("migrated", name)
            self._flip(name, token, job, started)
        self._event("flipped", name)
        return TenantResult(name, "moved", job.source, job.target, duration=self._clock() - started)

    def _run_steps(self, name: str, token: str, job: _Job, force: bool) -> str | None:
        """Run the job's steps; the error text of the one that failed, or None."""
        snapshot = None
        migrations = self.migrations
        if migrations is not None and migrations.snapshot is not None and not job.resume:
            snapshot = migrations.snapshot(name)
        done: list[Step] = []
        for step in job.steps:
            if step.run is not None:
                try:
                    step.run(name)
                except Exception as exc:
                    log.warning("migration step %s failed for %s: %r", step, name, exc)
                    error = f"step {step} failed: {type(exc).__name__}: {exc}"
                    return self._restore(name, token, job, done, snapshot, error)
            elif not force:  # pragma: no cover - refused in _job already
                return f"no downgrade is declared for {step}"
            self._record_step(name, token, step)
            done.append(step)
            self._event("step", name)
        return None

    def _restore(
        self,
        name: str,
        token: str,
        job: _Job,
        done: list[Step],
        snapshot: Any,
        error: str,
    ) -> str:
        """Put the tenant's data back as it was before this run; mark it broken if that fails."""
        migrations = self.migrations
        if migrations is None:  # a job with steps implies migrations
            return error
        try:
            if migrations.restore is not None and snapshot is not None:
                migrations.restore(name, snapshot)
                self._set_modules(name, token, job.start_modules)
            else:
                for step in reversed(done):
                    undo = migrations.reverse(step)
                    if undo.run is None:
                        raise RuntimeError(f"no {undo.direction}grade is declared for {undo}")
                    undo.run(name)
                    self._record_step(name, token, undo)
        except _Abort:
            raise
        except Exception as exc:
            return f"BROKEN: {error}; restoring its data failed too: {type(exc).__name__}: {exc}"
        return error

    def _record_step(self, name: str, token: str, step: Step) -> None:
        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            modules = dict(self._modules_of(policy, record))
            modules[step.module] = step.after
            state[STATE_MODULES] = {k: v for k, v in modules.items() if v}
            state[STATE_LEASE] = {"owner": token, "expires": self._clock() + self.lease_ttl}
            return replace(record, state=state)

        self._write(
            name,
            "migration-step",
            update,
            lambda b, a: (
                b.state.get(STATE_MODULES),
                {"step": str(step), "modules": a.state.get(STATE_MODULES)},
            ),
        )

    def _set_modules(self, name: str, token: str, modules: Mapping[str, int]) -> None:
        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            state[STATE_MODULES] = dict(modules)
            return replace(record, state=state)

        self._write(
            name,
            "migration-restore",
            update,
            lambda b, a: (b.state.get(STATE_MODULES), a.state.get(STATE_MODULES)),
        )

    def _owned(self, record: TenantRecord, token: str) -> dict[str, Any]:
        lease = record.state.get(STATE_LEASE)
        if not isinstance(lease, Mapping) or lease.get("owner") != token:
            raise _Abort(
                "lost the lease on this tenant to another runner (a step outlived lease_ttl "
                "without heartbeat?); that runner carries on"
            )
        return dict(record.state)

    def _fail(self, name: str, token: str, job: _Job, error: str, started: float) -> TenantResult:
        status: Outcome = "broken" if error.startswith("BROKEN: ") else "failed"
        finished = self._clock()

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            state.pop(STATE_LEASE, None)
            state[STATE_MIGRATION] = {
                "status": status,
                "from": job.source,
                "to": job.target,
                "started": started,
                "finished": finished,
                "duration": round(finished - started, 3),
                "error": error,
            }
            return replace(record, state=state)

        self._write(
            name,
            "migration-failed",
            update,
            lambda b, a: (
                {"version": job.source},
                {"version": job.target, **dict(a.state.get(STATE_MIGRATION) or {})},
            ),
        )
        self._event("failed", name)
        return TenantResult(name, status, job.source, job.target, error, finished - started)

    def _flip(self, name: str, token: str, job: _Job, started: float) -> None:
        finished = self._clock()

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            state.pop(STATE_LEASE, None)
            state[STATE_MODULES] = dict(job.target_modules)
            state[STATE_MIGRATION] = {
                "status": "ok",
                "from": job.source,
                "to": job.target,
                "started": started,
                "finished": finished,
                "duration": round(finished - started, 3),
            }
            rollout = policy.rollout
            ratchet: str | None = None
            if rollout is not None and job.target == rollout.candidate:
                state[STATE_DATA] = job.target
                ratchet = job.target
            else:
                state.pop(STATE_DATA, None)
            if job.hold is not None:
                state[STATE_HELD] = job.hold
            return replace(record, state=state, ratchet=ratchet)

        action = "migrate" if job.target != job.source else "migration-resume"
        if job.hold is not None or (job.steps and job.steps[0].direction == "down"):
            action = "rollback"
        self._write(
            name,
            action,
            update,
            lambda b, a: (
                {"version": job.source, "modules": job.start_modules},
                {
                    "version": job.target,
                    "modules": job.target_modules,
                    "result": "ok",
                    "duration": round(finished - started, 3),
                    "steps": [str(s) for s in job.steps],
                },
            ),
        )

    def _renew(self, name: str, token: str) -> bool:
        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            lease = record.state.get(STATE_LEASE)
            if not isinstance(lease, Mapping) or lease.get("owner") != token:
                return record
            state = dict(record.state)
            state[STATE_LEASE] = {"owner": token, "expires": self._clock() + self.lease_ttl}
            return replace(record, state=state)

        self._write(name, "migration-lease", update, lambda b, a: (None, None))
        return True

    def _write(
        self,
        name: str,
        action: str,
        update: Callable[[TenantRecord, Policy], TenantRecord],
        describe: Callable[[TenantRecord, TenantRecord], tuple[Any, Any]],
    ) -> None:
        self.store.update_tenants([name], action, update, describe=describe, actor=self.actor)

    def _event(self, event: str, tenant: str) -> None:
        if self._on_event is not None:
            self._on_event(event, tenant)

    def _batch(
        self,
        action: str,
        names: list[str],
        mode: str,
        concurrency: int,
        max_failures: int | None,
        progress: Callable[[TenantResult], None] | None,
        *,
        force: bool = False,
        retry_failed: bool = False,
    ) -> RunResult:
        """Move ``names`` with at most ``concurrency`` at a time; halt past ``max_failures``."""
        if concurrency < 1:
            raise ValidationError("concurrency must be at least 1")
        result = RunResult(action)
        queue = iter(names)
        lock = threading.Lock()
        stop = threading.Event()
        crashed: list[BaseException] = []

        def worker() -> None:
            while not stop.is_set():
                with lock:
                    name = next(queue, None)
                if name is None:
                    return
                try:
                    outcome = self._move(
                        name, mode, force=force, hold=False, retry_failed=retry_failed
                    )
                except BaseException as exc:  # a crash (or a store error): stop everything
                    with lock:
                        crashed.append(exc)
                    stop.set()
                    return
                with lock:
                    result.results.append(outcome)
                    failures = len(result.failures)
                if progress is not None:
                    progress(outcome)
                if max_failures is not None and failures > max_failures and not stop.is_set():
                    stop.set()
                    reason = (
                        f"{failures} tenants failed to migrate (more than max_failures="
                        f"{max_failures}); see `cohortroute rollout status`"
                    )
                    result.halted = reason
                    self.halt(reason)

        threads = [
            threading.Thread(target=worker, name=f"cohortroute-{action}-{i}", daemon=True)
            for i in range(min(concurrency, max(len(names), 1)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if crashed:
            raise crashed[0]
        for name in queue:
            result.results.append(TenantResult(name, "skipped", error="the rollout was halted"))
        return result


class _Heartbeat:
    """Renews a runner's lease every third of its TTL while a tenant's steps run."""

    def __init__(self, controller: RolloutController, name: str, token: str) -> None:
        self._controller = controller
        self._name = name
        self._token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="cohortroute-lease")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self._controller.lease_ttl / 3
        while not self._stop.wait(interval):
            try:
                self._controller._renew(self._name, self._token)
            except Exception as exc:  # the next beat, or the lease expiry, takes over
                log.warning("could not renew the lease on %s: %r", self._name, exc)


# --- helpers ------------------------------------------------------------------------------------


def _ratchets(decision: Decision, rollout: Rollout, record: TenantRecord) -> bool:
    """True when the tenant is on the candidate because of its bucket (so lowering would move it
    back unless its ratchet is set)."""
    return (
        decision.reason is Reason.ROLLOUT
        and decision.version == rollout.candidate
        and record.pin is None
    )


def bucket_at_least(rollout: Rollout, tenant: str, points: int) -> bool:
    """True when the tenant's bucket in ``rollout`` is ``points`` or more."""
    return bucket(rollout.salt, tenant) >= points


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _between(value: int, a: int, b: int) -> bool:
    low, high = min(a, b), max(a, b)
    return low <= value < high


def _without_keys(*keys: str) -> Callable[[TenantRecord, Policy], TenantRecord]:
    def strip(record: TenantRecord, policy: Policy) -> TenantRecord:
        if not any(k in record.state for k in keys):
            return record
        return replace(record, state={k: v for k, v in record.state.items() if k not in keys})

    return strip


def _describe_start(before: TenantRecord, after: TenantRecord) -> tuple[Any, Any]:
    migration = after.state.get(STATE_MIGRATION) or {}
    return (
        {"version": migration.get("from")},
        {"version": migration.get("to"), "steps": migration.get("steps"), "status": "migrating"},
    )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def parse_duration(text: str | float) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``2h``, ``1d`` or ``1h30m`` into seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValidationError(
            f"invalid duration {text!r}: use seconds or a number with s, m, h or d, like 2h or 90m"
        )
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * factor[u] for n, u in parts)


def _lines(source: str | os.PathLike[str] | Iterable[str]) -> Iterator[str]:
    if isinstance(source, (str, os.PathLike)):
        with Path(source).open(encoding="utf-8", newline="") as handle:
            yield from handle
    else:
        yield from source


def parse_tenant_lines(lines: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Parse tenant import lines: names, and tags per tenant (see ``import_tenants``).

    Raises ValidationError naming the line of the first bad tenant or tag.
    """
    names: list[str] = []
    tags: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        cells = next(csv.reader(io.StringIO(text))) if "," in text or '"' in text else [text]
        cells = [c.strip() for c in cells]
        if number == 1 and cells[0].lower() in ("tenant", "name"):
            continue
        try:
            name = check_tenant_name(cells[0])
            labels = [
                check_tag_name(t)
                for cell in cells[1:]
                for t in cell.replace(";", " ").replace("|", " ").split()
            ]
        except ValidationError as exc:
            raise ValidationError(f"line {number}: {exc}") from None
        names.append(name)
        if labels:
            tags.setdefault(name, []).extend(labels)
    return names, tags

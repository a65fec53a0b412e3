"""The migration runner: move one tenant's data, under a lease, then flip it in one write.

Per tenant: take the lease in the tenant's record with one atomic write that also marks it
*migrating* (routers answer it 503 with Retry-After); wait ``drain`` seconds so every router
has seen the mark; run the migration steps, recording each one so a crash resumes where it
stopped; then flip the record (data version, ratchet, lease released) in one last write. A
failing step restores the tenant's data (snapshot, or the downgrade steps already run) and marks
it failed; if restoring fails too, it is *broken* and keeps answering 503. Any crash leaves the
tenant either migrating (503, resumable once the lease expires) or fully on one side.

Each lease carries a generation, the fencing token handed to every step: the runner checks the
lease before each step and before recording it, and a step that finished after its lease was
lost marks the tenant broken (:mod:`.fencing`) instead of being recorded.

The lease and migration marks are :class:`~cohortroute.policy.Lease` and
:class:`~cohortroute.policy.MigrationState` in the tenant's state.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._clock import SYSTEM, Clock
from ..migrations import Migrations, MigrationStep, StepContext, run_step
from ..policy import (
    STATE_DATA,
    STATE_HELD,
    STATE_LEASE,
    STATE_MIGRATION,
    STATE_MODULES,
    Lease,
    MigrationState,
    Policy,
    TenantRecord,
)
from ..store.base import Store
from ..tenant_state import LEASE_RENEWED_ACTION
from . import jobs
from .fencing import LeaseLost, breach_update, lost
from .jobs import Job
from .results import Outcome, TenantResult

if TYPE_CHECKING:
    from ..assign.chain import Chain

log = logging.getLogger(__name__)

EventHook = Callable[[str, str], None]
"""Called as ``hook(event, tenant)`` at each point of a tenant's migration: ``leased``, ``step``,
``migrated`` (all steps done, not flipped yet), ``flipped``, ``failed``, and ``renewed`` each
time the heartbeat renews the lease. Useful for progress output and for tests that inject
crashes."""

RecordUpdate = Callable[[TenantRecord, Policy], TenantRecord]
Describe = Callable[[TenantRecord, TenantRecord], tuple[Any, Any]]


class MigrationRunner:
    """Moves tenants' data one at a time per call; safe to call from several threads."""

    def __init__(
        self,
        store: Store,
        migrations: Migrations | None,
        *,
        actor: str | None,
        lease_ttl: float,
        drain: float,
        clock: Clock = SYSTEM,
        sleep: Callable[[float], None],
        on_event: EventHook | None = None,
        halt: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store
        self.migrations = migrations
        self.actor = actor
        self.lease_ttl = lease_ttl
        self.drain = drain
        self.clock = clock
        self._sleep = sleep
        self._on_event = on_event
        self._halt = halt
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    # --- moving one tenant ------------------------------------------------------------------

    def move(
        self,
        name: str,
        mode: str,
        *,
        force: bool = False,
        hold: bool = False,
        retry_failed: bool = False,
        chain: Chain | None = None,
    ) -> TenantResult:
        """Move one tenant's data (``forward`` to the candidate, ``back`` to the default).

        Lease + *migrating* mark in one write; drain; steps, each recorded; flip. Exactly one
        runner works on a tenant at a time, and pending work is recomputed inside the lease
        transaction, so a second runner finds nothing left to do. A forward move happens only
        when ``chain`` (the routers' assignment backends; the built-ins when None) puts the
        tenant on the candidate.
        """
        token = f"{self._owner}:{secrets.token_hex(4)}"
        started = self.clock.time()
        found: dict[str, Any] = {}
        intends = jobs.intends_with(chain)
        if chain is not None and chain.custom and mode == "forward":
            record, policy = self.store.tenant(name), self.store.policy()
            intends = jobs.asked_before(chain, policy, record, started)

        def take(record: TenantRecord, policy: Policy) -> TenantRecord:
            found.clear()
            now = self.clock.time()
            lease = record.lease
            if lease is not None and lease.held_at(now):
                found["busy"] = lease.owner
                found["until"] = lease.expires
                return record
            job = jobs.plan_job(
                self.migrations, policy, record, mode, now, force, hold, retry_failed, intends
            )
            if not isinstance(job, Job):
                found["refused" if isinstance(job, str) else "noop"] = job
                return record
            found["job"] = job
            generation = (lease.generation if lease is not None else 0) + 1
            found["generation"] = generation
            state = dict(record.state)
            state[STATE_LEASE] = Lease(token, now + self.lease_ttl, generation).to_json()
            state[STATE_MIGRATION] = MigrationState(
                "migrating",
                job.source,
                job.target,
                started=now,
                steps=tuple(str(s) for s in job.steps),
                hold=job.hold,
            ).to_json()
            return replace(record, state=state)

        self._write(name, "migration-start", take, _describe_start)
        if "busy" in found and mode == "back":
            # Not "busy": a rollback must not end the rollout over a tenant another runner (or
            # a killed one, until its lease expires) is migrating, or its data is left behind.
            return TenantResult(
                name, "refused", error=jobs.held_elsewhere(name, found["busy"], found["until"])
            )
        if "busy" in found:
            return TenantResult(name, "busy", error=f"another runner holds it ({found['busy']})")
        if "refused" in found:
            return TenantResult(name, "refused", error=str(found["refused"]))
        if "job" not in found:
            return TenantResult(name, "unchanged")
        job: Job = found["job"]
        generation: int = found["generation"]
        self._event("leased", name)
        with Heartbeat(self, name, token):
            try:
                if not job.resume and job.steps and self.drain > 0:
                    self._sleep(self.drain)  # every router sees "migrating" before data moves
                snapshot = self._snapshot(name, job)
                error = self._run_steps(name, token, generation, job, force, snapshot)
                if error is None:
                    self._event("migrated", name)
                    error = self._flip(name, token, job, started)
                    if error is not None:  # its version is gone: its data goes back
                        done = list(job.steps)
                        error = self._restore(name, token, generation, job, done, snapshot, error)
                if error is not None:
                    return self._fail(name, token, job, error, started)
            except LeaseLost as exc:
                return self._lost(name, generation, job, exc, started)
        self._event("flipped", name)
        elapsed = self.clock.time() - started
        return TenantResult(name, "moved", job.source, job.target, duration=elapsed)

    def _snapshot(self, name: str, job: Job) -> Any:
        """The app's snapshot of the tenant's data before a fresh run (its ``restore`` hook
        puts it back), or None."""
        migrations = self.migrations
        if migrations is not None and migrations.snapshot is not None and not job.resume:
            return migrations.snapshot(name)
        return None

    def _run_steps(
        self, name: str, token: str, generation: int, job: Job, force: bool, snapshot: Any
    ) -> str | None:
        """Run the job's steps; the error text of the one that failed, or None."""
        done: list[MigrationStep] = []
        for step in job.steps:
            if step.run is not None:
                try:
                    self._run_one(name, token, generation, step)
                except LeaseLost:
                    raise
                except Exception as exc:
                    if not self.holds(name, token):  # refused by a fenced write, say: not ours
                        raise lost(token) from exc
                    log.warning("migration step %s failed for %s: %r", step, name, exc)
                    error = f"step {step} failed: {type(exc).__name__}: {exc}"
                    return self._restore(name, token, generation, job, done, snapshot, error)
            elif not force:  # pragma: no cover - refused in job() already
                return f"no downgrade is declared for {step}"
            self._record_step(name, token, step)
            done.append(step)
            self._event("step", name)
        return None

    def _run_one(self, name: str, token: str, generation: int, step: MigrationStep) -> None:
        """Run one step with its fencing token, once the lease is confirmed ours."""
        assert step.run is not None
        if not self.holds(name, token):
            raise lost(token)
        context = StepContext(name, generation, step, lambda: self.holds(name, token, now=True))
        run_step(step.run, name, context)

    def holds(self, name: str, token: str, *, now: bool = False) -> bool:
        """True while lease ``token`` is the tenant's (and, with ``now``, not expired)."""
        lease = self.store.tenant(name).lease
        if lease is None or lease.owner != token:
            return False
        return not now or lease.held_at(self.clock.time())

    def _lost(
        self, name: str, generation: int, job: Job, exc: LeaseLost, started: float
    ) -> TenantResult:
        """The runner lost its lease: leave the tenant to its new runner, or, when a step of
        ours finished after the loss, mark the tenant broken and halt the rollout."""
        finished = self.clock.time()
        if exc.touched is None:
            log.warning("gave up %s: %s", name, exc)
            return TenantResult(name, "busy", job.source, job.target, str(exc), finished - started)
        fallback = MigrationState(
            "broken", job.source, job.target, started=started, finished=finished
        )
        found, update = breach_update(exc, generation, fallback)
        self._write(
            name,
            "migration-fenced",
            update,
            lambda b, a: (
                {"status": b.migration_status, "lease": b.state.get(STATE_LEASE)},
                {"status": a.migration_status, "error": found.get("error"), "fenced": True},
            ),
        )
        error = found.get("error") or str(exc)
        log.error("cohortroute: %s is broken: %s", name, error)
        self._event("failed", name)
        if self._halt is not None:
            self._halt(f"{name}: a migration step finished after its runner lost the lease")
        return TenantResult(name, "broken", job.source, job.target, error, finished - started)

    def _restore(
        self,
        name: str,
        token: str,
        generation: int,
        job: Job,
        done: list[MigrationStep],
        snapshot: Any,
        error: str,
    ) -> str:
        """Put the tenant's data back as it was before this run; mark it broken if that fails."""
        migrations = self.migrations
        if migrations is None:  # a job with steps implies migrations
            return error
        try:
            if migrations.restore is not None and snapshot is not None:
                if not self.holds(name, token):
                    raise lost(token)
                migrations.restore(name, snapshot)
                self._set_modules(name, token, job.start_modules)
            else:
                for undo in jobs.undo_steps(migrations, job, done):
                    if undo.run is None:
                        raise RuntimeError(f"no {undo.direction}grade is declared for {undo}")
                    self._run_one(name, token, generation, undo)
                    self._record_step(name, token, undo)
        except LeaseLost:
            raise
        except Exception as exc:
            return f"BROKEN: {error}; restoring its data failed too: {type(exc).__name__}: {exc}"
        return error

    def _record_step(self, name: str, token: str, step: MigrationStep) -> None:
        """Record a finished step and renew the lease, in one write that first checks the lease
        is still ours: a step that finished outside it is a breach, never recorded."""

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            modules = dict(jobs.modules_of(self.migrations, policy, record))
            modules[step.module] = step.after
            state[STATE_MODULES] = {k: v for k, v in modules.items() if v}
            state[STATE_LEASE] = self._renewed(record)
            return replace(record, state=state)

        touched = None if step.run is None else f"step {step}"
        self._write_owned(
            name,
            "migration-step",
            update,
            lambda b, a: (
                b.state.get(STATE_MODULES),
                {"step": str(step), "modules": a.state.get(STATE_MODULES)},
            ),
            touched,
        )

    def _set_modules(self, name: str, token: str, modules: Mapping[str, int]) -> None:
        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            state[STATE_MODULES] = dict(modules)
            return replace(record, state=state)

        self._write_owned(
            name,
            "migration-restore",
            update,
            lambda b, a: (b.state.get(STATE_MODULES), a.state.get(STATE_MODULES)),
            "the restore hook",
        )

    def _write_owned(
        self, name: str, action: str, update: RecordUpdate, describe: Describe, touched: str | None
    ) -> None:
        """A write that needs the lease, after this runner changed the tenant's data."""
        try:
            self._write(name, action, update, describe)
        except LeaseLost as exc:
            raise LeaseLost(str(exc), touched) from None

    def _renewed(self, record: TenantRecord) -> dict[str, Any]:
        lease = record.lease
        assert lease is not None  # checked by _owned
        return Lease(lease.owner, self.clock.time() + self.lease_ttl, lease.generation).to_json()

    def _owned(self, record: TenantRecord, token: str) -> dict[str, Any]:
        lease = record.lease
        if lease is None or lease.owner != token:
            raise lost(token)
        return dict(record.state)

    @staticmethod
    def _released(record: TenantRecord, state: dict[str, Any]) -> None:
        """Give the lease up and keep its generation, so the next one is higher."""
        lease = record.lease
        if lease is not None:
            state[STATE_LEASE] = lease.released().to_json()

    def _fail(self, name: str, token: str, job: Job, error: str, started: float) -> TenantResult:
        status: Outcome = "broken" if error.startswith("BROKEN: ") else "failed"
        finished = self.clock.time()
        ended = MigrationState(
            status, job.source, job.target, started=started, finished=finished, error=error
        )

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            self._released(record, state)
            state[STATE_MIGRATION] = ended.to_json()
            return replace(record, state=state)

        self._write(
            name,
            "migration-failed",
            update,
            lambda b, a: ({"version": job.source}, {"version": job.target, **ended.to_json()}),
        )
        self._event("failed", name)
        return TenantResult(name, status, job.source, job.target, error, finished - started)

    def _flip(self, name: str, token: str, job: Job, started: float) -> str | None:
        """Serve the tenant the version its data is now at, in one write; or, when that
        version is no longer the candidate nor the default (the rollout was rolled back or
        replaced while the steps ran), write nothing and say why: the caller moves the data
        back, else the tenant would be served the default on the candidate's data."""
        ended = MigrationState(
            "ok", job.source, job.target, started=started, finished=self.clock.time()
        )
        stale: list[str] = []

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            state = self._owned(record, token)
            rollout = policy.rollout
            stale.clear()
            if job.target != policy.default and (
                rollout is None or rollout.candidate != job.target
            ):
                stale.append(
                    f"the rollout of {job.target} ended (or another one replaced it) while "
                    f"{name}'s data was migrated to it; moved its data back to {job.source}"
                )
                return record
            self._released(record, state)
            state[STATE_MODULES] = dict(job.target_modules)
            state[STATE_MIGRATION] = ended.to_json()
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
                    "duration": ended.duration,
                    "steps": [str(s) for s in job.steps],
                },
            ),
        )
        return stale[0] if stale else None

    def renew(self, name: str, token: str) -> None:
        """Extend the lease ``token`` holds on ``name`` by ``lease_ttl`` (if it still holds it)."""

        def update(record: TenantRecord, policy: Policy) -> TenantRecord:
            lease = record.lease
            if lease is None or lease.owner != token:
                return record
            return replace(record, state={**record.state, STATE_LEASE: self._renewed(record)})

        self._write(name, LEASE_RENEWED_ACTION, update, lambda b, a: (None, None))
        self._event("renewed", name)

    def _write(self, name: str, action: str, update: RecordUpdate, describe: Describe) -> None:
        self.store.update_tenants([name], action, update, describe=describe, actor=self.actor)

    def _event(self, event: str, tenant: str) -> None:
        if self._on_event is not None:
            self._on_event(event, tenant)


class Heartbeat:
    """Renews a runner's lease every third of its TTL (on the runner's clock) while a tenant's
    steps run."""

    def __init__(self, runner: MigrationRunner, name: str, token: str) -> None:
        self._runner = runner
        self._name = name
        self._token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="cohortroute-lease")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        clock = self._runner.clock
        interval = self._runner.lease_ttl / 3
        # An injected clock moves without notice, so it is polled; the real one is waited on.
        cap = interval if clock is SYSTEM else min(interval, 0.01)
        due = clock.monotonic() + interval
        while not self._stop.wait(min(cap, max(0.0, due - clock.monotonic()))):
            if clock.monotonic() < due:
                continue
            due = clock.monotonic() + interval
            try:
                self._runner.renew(self._name, self._token)
            except Exception as exc:  # the next beat, or the lease expiry, takes over
                log.warning("could not renew the lease on %s: %r", self._name, exc)


def _describe_start(before: TenantRecord, after: TenantRecord) -> tuple[Any, Any]:
    migration = after.migration or MigrationState(None)
    return (
        {"version": migration.from_version},
        {
            "version": migration.to_version,
            "steps": list(migration.steps),
            "status": "migrating",
        },
    )

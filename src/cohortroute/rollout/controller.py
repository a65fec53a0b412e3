"""The rollout controller: the operator's verbs, on any store.

:class:`RolloutController` is a facade with the same verbs as the CLI: ``start``, ``advance``,
``set``, ``preview``, ``halt``, ``resume``, ``run``, ``migrate``, ``rollback``, ``finalize``,
``status``, ``explain``, ``history``, plus the tenant registry (``register``, ``add_tenant``,
``import_tenants``). The work is done elsewhere in this package: the ratchet in
:mod:`.ratchet`, per-tenant migrations in :mod:`.runner` (batches in :mod:`.batch`), rollback
and finalize in :mod:`.endings`, the dry run in :mod:`.preview`. ``docs/rollouts.md`` has the
long form of the guarantees.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from .. import ratchet, version_needs
from .._clock import SYSTEM, Clock, as_clock
from ..advice import Call, advise
from ..assign.backend import AssignmentBackend
from ..assign.chain import Chain
from ..decision import Decision
from ..errors import ConflictError, ValidationError
from ..explain import decide_for
from ..migrations import Migrations
from ..policy import (
    AuditEntry,
    Policy,
    Rollout,
    begin_rollout,
    check_halt_reason,
    check_tag_name,
    check_tenant_name,
    format_percent,
    next_step_index,
    parse_percent,
    parse_plan,
)
from ..store.base import Store, open_store
from ..versions import check_serving
from . import endings, jobs
from .context import Progress, RolloutContext
from .imports import import_tenants
from .percent import set_percent
from .preview import compute_preview, preview_target
from .results import PercentChange, Preview, RunResult, TenantResult
from .runner import EventHook, MigrationRunner
from .status import rollout_status
from .tenants import format_duration

log = logging.getLogger(__name__)

_REGISTER_DELAY = 1.0  # router.REGISTER_DELAY: routers batch new tenants for this long


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
    :param clock: a :class:`cohortroute._clock.Clock` (tests pass a ``ManualClock``), or a
        function returning Unix time as before.
    :param sleep: how to wait for ``drain`` and ``settle``; by default the clock's own
        ``sleep`` if it has one (a ``ManualClock`` advances instead of waiting), else
        :func:`time.sleep`.
    :param on_event: ``hook(event, tenant)`` at each point of a migration (see :data:`EventHook`).
    :param assign: the routers' custom assignment backends (``router.chain``): ``preview``,
        ``explain`` and who ``run`` migrates then decide as routers do. Without them, the
        built-ins only.
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
        clock: Clock | Callable[[], float] = SYSTEM,
        sleep: Callable[[float], None] | None = None,
        on_event: EventHook | None = None,
        assign: Chain | Iterable[AssignmentBackend] | None = None,
    ) -> None:
        opened = open_store(store)
        if migrations is not None:
            migrations.check()
        if lease_ttl <= 0:
            raise ValidationError("lease_ttl must be a positive number of seconds")
        interval = opened.refresh_interval if refresh_interval is None else refresh_interval
        drain = 2 * interval if drain is None else float(drain)
        if drain < interval:
            log.warning(
                "cohortroute: drain=%gs is shorter than the routers' refresh interval (%gs): a "
                "router that has not refreshed yet could serve a tenant the old version while "
                "its data migrates. Use drain >= the routers' refresh interval plus your "
                "longest request (or tell the controller refresh_interval= if the routers use "
                "a shorter one than the store's default).",
                drain,
                interval,
            )
        the_clock = as_clock(clock)
        wait: Callable[[float], None] = (
            sleep if sleep is not None else getattr(the_clock, "sleep", time.sleep)
        )
        runner = MigrationRunner(
            opened,
            migrations,
            actor=actor,
            lease_ttl=float(lease_ttl),
            drain=drain,
            clock=the_clock,
            sleep=wait,
            on_event=on_event,
            halt=self._halt_after_breach,
        )
        self._ctx = RolloutContext(
            store=opened,
            migrations=migrations,
            actor=actor,
            clock=the_clock,
            sleep=wait,
            settle=_REGISTER_DELAY + 2 * interval if settle is None else float(settle),
            runner=runner,
            chain=assign if assign is None or isinstance(assign, Chain) else Chain(assign),
        )

    def _halt_after_breach(self, reason: str) -> None:
        """A step finished outside its lease: stop the rollout until an operator looked."""
        try:
            self._ctx.halt(reason)
        except ConflictError:  # the rollout ended meanwhile: the broken tenant still shows
            log.warning("cohortroute: no rollout to halt after: %s", reason)

    @property
    def store(self) -> Store:
        """The store this controller works on."""
        return self._ctx.store

    @property
    def migrations(self) -> Migrations | None:
        """The app's migrations (None: this controller cannot touch a gated rollout)."""
        return self._ctx.migrations

    @property
    def actor(self) -> str | None:
        """Who the audit log names for this controller's writes."""
        return self._ctx.actor

    @property
    def clock(self) -> Clock:
        """The clock the controller reads (dwell, timed plans, leases)."""
        return self._ctx.clock

    @property
    def settle(self) -> float:
        """Seconds to wait for routers to flush the tenants they served, before a last scan."""
        return self._ctx.settle

    @property
    def lease_ttl(self) -> float:
        """Seconds a runner's lease on a tenant lasts without renewal."""
        return self._ctx.runner.lease_ttl

    @property
    def drain(self) -> float:
        """Seconds between marking a tenant *migrating* and touching its data."""
        return self._ctx.runner.drain

    # --- reading ------------------------------------------------------------------------------

    def current(self) -> Rollout | None:
        """The running rollout as it stands now (a timed plan moved on by the clock), or None."""
        rollout = self.store.policy().rollout
        return None if rollout is None else rollout.at(self._ctx.now())

    def explain(self, tenant: str) -> Decision:
        """The decision for ``tenant`` now, as a router would make it (without mounting check)."""
        name = check_tenant_name(tenant)
        return decide_for(
            self.store.policy(), self.store.tenant(name), self._ctx.now(), self._ctx.chain
        )

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """A tenant's story (or the whole log), newest first: every move, migration and mark."""
        name = None if tenant is None else check_tenant_name(tenant)
        return self.store.history(name, limit)

    def status(self) -> dict[str, Any]:
        """The rollout as it stands, and tenants per state: registered, migrated, failing...
        (:func:`~cohortroute.rollout.status.rollout_status`)."""
        return rollout_status(self.store, self._ctx.now())

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
        self,
        source: str | os.PathLike[str] | Iterable[str],
        *,
        batch_size: int = 50_000,
        replace_tags: bool = False,
    ) -> int:
        """Import tenants from a file (or lines): one name per line, or CSV ``name,tag,tag...``.

        Blank lines and ``#`` comments are skipped, as is a header row whose first cell is
        ``tenant`` or ``name``; a tag cell may hold several tags separated by spaces, ``;`` or
        ``|``. Every name is validated before anything is written, then the tenants are written
        ``batch_size`` per transaction. Tags are added to a tenant's, or with ``replace_tags``
        made exactly the file's; each tenant whose tags change gets an audit entry. Returns how
        many tenants were new (:func:`cohortroute.rollout.imports.import_tenants` says more).
        """
        counts = import_tenants(
            self.store, source, replace_tags=replace_tags, batch_size=batch_size, actor=self.actor
        )
        return len(counts.new)

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
        bucketer: str = "sha256",
    ) -> Rollout:
        """Start rolling out ``candidate``: at ``percent``, or at the first step of ``plan``.

        ``bucketer`` picks the bucket function (``"unleash"`` buckets as Unleash's gradual
        rollout with ``salt`` as its groupId).

        ``plan`` lists percentages that go strictly up (``[1, 5, 25, 50, 100]``); ``every`` is
        the minimum dwell per step in seconds (``advance`` refuses earlier unless forced); with
        ``auto`` the plan moves on by itself every ``every`` seconds. When the app's migrations
        say the candidate's data differs from the default's, the rollout is *gated*: tenants
        are served the candidate only once ``run`` has migrated them.
        """
        ramp = parse_plan(plan)
        first = ramp[0] if ramp else 0
        points = parse_percent(percent) if percent is not None else first
        if auto and (not ramp or not every):
            raise ValidationError("a timed (auto) rollout needs a plan and every=SECONDS")
        if salt is None:  # a random one; Unleash's is the toggle's groupId (refused blank)
            salt = "" if bucketer == "unleash" else f"{candidate}:{secrets.token_hex(8)}"
        now = self._ctx.now()

        def update(policy: Policy) -> Policy:
            check_serving(policy, candidate)  # unknown or retired: say that, not what data needs
            gated = version_needs.gated(policy, candidate, self.migrations)
            return begin_rollout(
                policy,
                candidate,
                percent=points,
                plan=ramp,
                salt=salt,
                now=now,
                every=every,
                auto=auto,
                gated=gated,
                bucketer=bucketer,
            )

        ratchet.clear_stale_ratchets(self.store, actor=self.actor)
        self._ctx.commit_policy("rollout-start", update)
        return self._ctx.require(self.store.policy())

    def preview(self, percent: float | str | None = None) -> Preview:
        """Dry run: exactly which registered tenants move at the next step (or at ``percent``).

        Computed with the router's own :func:`~cohortroute.decision.decide` and bucket function
        over every tenant the store knows, including pins, tag rules, rolled-back tenants and
        ratchets (which keep tenants where they are when the percentage goes down).
        """
        policy = self.store.policy()
        current = self._ctx.require(policy).at(self._ctx.now())
        target, step = preview_target(current, percent)
        return compute_preview(policy, current, target, step, self.store.tenants(), self._ctx.chain)

    def advance(self, *, force: bool = False) -> Rollout:
        """Move to the next step of the plan; refused before the step's minimum dwell unless
        ``force``."""
        policy = self.store.policy()
        rollout = self._ctx.require(policy)
        now = self._ctx.now()
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
            raise advise(
                ConflictError,
                f"step {format_percent(current.percent)} started {format_duration(now - started)} "
                f"ago and the plan's minimum dwell is {format_duration(current.every)}: wait "
                f"{format_duration(wait)} more, or {{now}} to advance now",
                now=Call("rollout advance", "advance", ("--force",), "force=True"),
            )
        self._ctx.change_percent(rollout, current, current.plan[index], index, "rollout-advance")
        return self._ctx.require(self.store.policy())

    def set(self, percent: float | str) -> Rollout:
        """Jump to ``percent``. Lowering keeps every tenant already on the candidate there
        (the ratchet); raising is refused while the rollout is halted."""
        return self.set_percent(percent).rollout

    def set_percent(self, percent: float | str) -> PercentChange:
        """:meth:`set`, answering who moved (raising) or how many the ratchet kept (lowering)."""
        return set_percent(self._ctx, percent)

    def halt(self, reason: str | None = None) -> Rollout:
        """Freeze the rollout where it is (a timed plan stops moving on; ``run`` migrates no one
        new). Nobody moves: the percentage stays, so nobody leaves the candidate. ``reason`` is
        one printable line of at most 500 characters (``ValidationError`` otherwise)."""
        return self._ctx.halt(check_halt_reason(reason))

    def resume(self) -> Rollout:
        """Continue a halted rollout; a timed plan's current step starts its dwell again."""
        now = self._ctx.now()

        def update(policy: Policy) -> Policy:
            rollout = self._ctx.require(policy)
            if not rollout.halted:
                return policy
            new = replace(rollout, halted=False, halt_reason=None, step_started_at=now)
            return replace(policy, rollout=new)

        self.store.update_policy("rollout-resume", update, actor=self.actor)
        return self._ctx.require(self.store.policy())

    # --- migrations -------------------------------------------------------------------------

    def run(
        self,
        *,
        concurrency: int = 4,
        max_failures: int = 5,
        retry_failed: bool = False,
        tenants: Iterable[str] | None = None,
        progress: Progress | None = None,
    ) -> RunResult:
        """Migrate every tenant the rollout has reached but whose data is not there yet.

        Also resumes migrations a crashed runner left behind (once their lease expired).
        Tenants run ``concurrency`` at a time; a failing tenant stays on its old version with
        its data restored and the batch goes on, but when more than ``max_failures`` fail the
        rollout is halted and no further tenant starts. Tenants whose last attempt failed are
        retried only with ``retry_failed``. ``progress(result)`` is called as each one ends.
        """
        policy = self.store.policy()
        rollout = self._ctx.require_migrations(policy, "rollout run")
        self._ctx.discover()
        if not rollout.gated:
            return RunResult("run", note=f"{rollout.candidate} needs no data migration")
        wanted = None if tenants is None else frozenset(check_tenant_name(t) for t in tenants)
        records = self.store.tenants()
        names = jobs.pending(
            policy, records, self._ctx.now(), retry_failed, self._ctx.chain, wanted
        )
        result = self._ctx.batch(
            "run",
            names,
            "forward",
            concurrency,
            max_failures,
            progress,
            retry_failed=retry_failed,
            chain=self._ctx.chain,
        )
        if rollout.halted:
            result.note = "the rollout is halted: only interrupted migrations were resumed"
        return result

    def migrate(self, tenant: str, *, retry_failed: bool = True) -> TenantResult:
        """Migrate one tenant now if the rollout has reached it (the single-tenant ``run``)."""
        self._ctx.require_migrations(self.store.policy(), "rollout run")
        return self._ctx.runner.move(
            check_tenant_name(tenant), "forward", retry_failed=retry_failed, chain=self._ctx.chain
        )

    # --- rollback and finalize --------------------------------------------------------------

    def rollback(
        self,
        tenant: str | None = None,
        *,
        force: bool = False,
        concurrency: int = 4,
        progress: Progress | None = None,
    ) -> RunResult:
        """Move tenants back to the default: the whole rollout, or one ``tenant``.

        The whole rollout: halt it, move every migrated tenant's data back (downgrade steps),
        then end the rollout and clear the ratchet marks. One tenant: move it back and keep it
        on the default for the rest of this rollout. A tenant whose migration has no downgrade
        is refused, before anything moves, unless ``force`` (its data is then left as it is).
        """
        return endings.rollback(self._ctx, tenant, force, concurrency, progress)

    def finalize(
        self,
        *,
        force: bool = False,
        concurrency: int = 4,
        progress: Progress | None = None,
    ) -> RunResult:
        """Everybody to the candidate; the candidate becomes the default; one version serves all.

        Migrates every tenant whose data is not at the candidate yet (a failure stops finalize
        with the rollout at 100 %, so nothing is lost), then makes the candidate the default,
        ends the rollout and clears the ratchet and migration marks. Pins and tag rules that
        point at the old default would keep tenants on it: finalize refuses unless ``force``,
        which removes them.
        """
        return endings.finalize(self._ctx, force, concurrency, progress)

    # --- internals: percentages and the ratchet ----------------------------------------------

    def pending(self, *, retry_failed: bool = False) -> list[str]:
        """The tenants ``run`` would migrate now (a dry run of its selection)."""
        policy = self.store.policy()
        records = self.store.tenants()
        return jobs.pending(policy, records, self._ctx.now(), retry_failed, self._ctx.chain)

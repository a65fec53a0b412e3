"""What every rollout verb shares: the store, who acts, the clock, the runner, and the common moves.

A :class:`RolloutContext` requires a running rollout, commits a policy change with one audit
entry per tenant it moves, halts the rollout, and moves a batch of tenants through the runner.
The verbs themselves are in :mod:`.controller` (and :mod:`.endings` for rollback and finalize).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .. import ratchet, version_needs
from .._clock import Clock
from ..advice import Call, advise
from ..assign.chain import Chain
from ..decision import decide
from ..errors import ConfigurationError, ConflictError
from ..migrations import Migrations
from ..policy import Policy, Rollout
from ..store.base import Store
from .batch import run_batch
from .results import RunResult, TenantResult
from .runner import MigrationRunner

log = logging.getLogger(__name__)

Progress = Callable[[TenantResult], None]


@dataclass
class RolloutContext:
    """The controller's parts, shared by the modules that implement its verbs."""

    store: Store
    migrations: Migrations | None
    actor: str | None
    clock: Clock
    sleep: Callable[[float], None]
    settle: float
    runner: MigrationRunner
    chain: Chain | None = None
    """The routers' assignment backends, so previews and audits decide as they do."""

    def now(self) -> float:
        """Unix time on the controller's clock."""
        return self.clock.time()

    def require(self, policy: Policy) -> Rollout:
        """The policy's rollout; ConflictError when none is running."""
        if policy.rollout is None:
            raise ConflictError(
                "no rollout is running; start one with `cohortroute rollout start VERSION`"
            )
        return policy.rollout

    def require_migrations(self, policy: Policy, command: str) -> Rollout:
        """The running rollout; when it is gated (it moves data), refused without the app's
        migrations, saying which ``--app`` the routers record (``command``: the CLI verb)."""
        rollout = self.require(policy)
        if rollout.gated and self.migrations is None:
            app = version_needs.recorded_app(policy, rollout.candidate, policy.default or "")
            python = (
                f"store, migrations={app.replace(':', '.')}" if app else "store, migrations=..."
            )
            raise advise(
                ConfigurationError,
                f"the rollout of {rollout.candidate} is gated (tenants' data must be migrated), "
                "but no migrations were given: {again}"
                + ("" if app else ", naming the Migrations your routers are built with"),
                again=Call(command, "RolloutController", ("--app", app or "MODULE:ATTR"), python),
            )
        return rollout

    def halt(self, reason: str | None) -> Rollout:
        """Freeze the rollout where it is (see :meth:`RolloutController.halt`)."""
        now = self.now()

        def update(policy: Policy) -> Policy:
            rollout = self.require(policy).at(now)
            if rollout.halted and rollout.halt_reason == reason:
                return policy
            return replace(policy, rollout=replace(rollout, halted=True, halt_reason=reason))

        self.store.update_policy("rollout-halt", update, actor=self.actor)
        return self.require(self.store.policy())

    def change_percent(
        self, stored: Rollout, current: Rollout, points: int, step: int, action: str
    ) -> list[TenantResult]:
        """Raise (or move along the plan) the rollout to ``points``, auditing who moves."""
        return self.commit_policy(
            action, ratchet.change_percent(stored, current, points, step, self.now())
        )

    def commit_policy(
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
        now = self.now()
        if any(p.rollout is not None and p.rollout.gated for p in (before, after)):
            return
        default = before.default or after.default or ""
        for record in self.store.tenants():
            old = decide(before, record, default, now=now, chain=self.chain)
            new = decide(after, record, default, now=now, chain=self.chain)
            if old.version != new.version:
                yield record.name, old.version, {"version": new.version, "why": new.detail}

    def discover(self) -> None:
        """Register the tenants the app's migrations say have data."""
        if self.migrations is not None and self.migrations.discover is not None:
            self.store.register_tenants(self.migrations.discover(), actor=self.actor)

    def batch(
        self,
        action: str,
        names: list[str],
        mode: str,
        concurrency: int,
        max_failures: int | None,
        progress: Progress | None,
        *,
        force: bool = False,
        retry_failed: bool = False,
        chain: Chain | None = None,
    ) -> RunResult:
        """Move ``names`` with at most ``concurrency`` at a time; halt past ``max_failures``.

        ``chain`` decides, in each lease transaction, whether a forward move is still pending
        (the built-ins when None: ``finalize`` moves everybody).
        """

        def move(name: str) -> TenantResult:
            return self.runner.move(name, mode, force=force, retry_failed=retry_failed, chain=chain)

        return run_batch(
            action,
            names,
            move,
            concurrency=concurrency,
            max_failures=max_failures,
            progress=progress,
            halt=self.halt,
        )

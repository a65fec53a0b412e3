"""The guard's loop: take the fleet lease, assess the rollout, act; once, or every interval.

:class:`Guard` is what ``cohortroute guard`` and ``cohortroute rollout run`` drive. Only the
holder of the lease (:mod:`.lease`) acts, so many hosts may run it for availability; the others
wait. Nothing runs inside the routers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .._clock import SYSTEM, Clock
from ..migrations import Migrations
from ..rollout.controller import RolloutController
from ..signals.model import SignalSink
from ..store.base import Store
from . import lease
from .actions import act
from .assess import Assessment, assess
from .explain import ACTOR, verdict_line
from .verdict import GuardConfig

log = logging.getLogger(__name__)


@dataclass
class Check:
    """The outcome of one evaluation."""

    leader: bool
    assessment: Assessment | None = None
    actions: list[str] = field(default_factory=list)
    held_by: lease.LeaseInfo | None = None  # the other guard's lease, when not the leader

    @property
    def line(self) -> str:
        """One sentence: the verdict, or why nothing was judged."""
        if not self.leader:
            if self.held_by is None:
                return "another guard holds the lease; waiting"
            until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.held_by.until))
            return f"{self.held_by.holder} holds the guard's lease until {until}; waiting"
        if self.assessment is None:
            return "no rollout to guard"
        return verdict_line(self.assessment)


class Guard:
    """Watch the rollout on ``store`` with the signals in ``sink``; halt or roll back on evidence.

    :param config: the statistics and actions (:class:`~.verdict.GuardConfig`).
    :param holder: this guard's name in the lease (``host:pid`` by default).
    :param interval: seconds between checks in :meth:`run`; the lease lasts three of them (at
        least three minutes).
    :param migrations: the app's migrations, so a gated rollout can be rolled back (without
        them the guard halts it instead).
    :param log_actions: log each action it takes as a warning (``cohortroute.guard.evaluator``);
        the CLI prints them instead, so it turns this off.
    """

    def __init__(
        self,
        store: Store,
        sink: SignalSink,
        *,
        config: GuardConfig | None = None,
        clock: Clock = SYSTEM,
        holder: str | None = None,
        interval: float = 60.0,
        migrations: Migrations | None = None,
        log_actions: bool = True,
    ) -> None:
        self.store = store
        self.log_actions = log_actions
        self.sink = sink
        self.config = config or GuardConfig()
        self.clock = clock
        self.holder = holder or lease.default_holder()
        self.interval = interval
        self.lease_ttl = max(3 * interval, 180.0)
        self.controller = RolloutController(
            store, migrations=migrations, actor=ACTOR, clock=clock, settle=0.0, drain=None
        )

    def assess(self) -> Assessment | None:
        """Judge the rollout without acting (what ``report`` shows)."""
        return assess(self.store, self.sink, self.config, self.clock.time())

    def check(self) -> Check:
        """One evaluation: take or renew the lease, assess, act."""
        now = self.clock.time()
        if not lease.acquire(self.store, self.holder, self.lease_ttl, now):
            return Check(False, held_by=lease.current(self.store))
        if self.store.policy().rollout is None:
            return Check(True)
        assessment = assess(self.store, self.sink, self.config, now)
        if assessment is None:
            return Check(True)
        actions = act(self.controller, assessment, self.interval)
        if self.log_actions:
            for line in actions:
                log.warning("cohortroute guard: %s", line)
        return Check(True, assessment, actions)

    def release(self) -> None:
        """Give the lease up (at the end of ``--once``, or when stopping)."""
        lease.release(self.store, self.holder)

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] | None = None,
        report: Callable[[Check], None] | None = None,
    ) -> None:
        """Check every ``interval`` seconds until ``stop()``; gives the lease up at the end."""
        wait: Callable[[float], None] = (
            sleep if sleep is not None else getattr(self.clock, "sleep", time.sleep)
        )
        try:
            while not stop():
                result = self.check()
                if report is not None:
                    report(result)
                if stop():
                    break
                wait(self.interval)
        finally:
            self.release()

"""A small seeded world for the guard, report and ticket tests: a memory store and its signal
sink, tenants with a day of stable history, and one minute of traffic at a time on a
:class:`~cohortroute._clock.ManualClock`."""

from __future__ import annotations

import random
from collections.abc import Callable

from cohortroute._clock import ManualClock
from cohortroute.guard import Guard, GuardConfig
from cohortroute.guard.simulation import poisson
from cohortroute.rollout import RolloutController
from cohortroute.signals import open_sink
from cohortroute.signals.model import SignalRow, SignalSink
from cohortroute.store import Store, open_store

Rate = Callable[[str, str], float]
"""(tenant, version) -> probability of a 5xx (or of a slow request)."""

FAST, SLOW = 3, 8  # histogram buckets: 50 ms and 750 ms


def _base(rate: float) -> Rate:
    return lambda tenant, version: rate


class World:
    """Tenants ``t0``..``tN`` on ``v1`` (default) and ``v2`` (candidate)."""

    def __init__(
        self,
        tenants: int = 40,
        *,
        traffic: int = 20,
        error_rate: float = 0.002,
        slow_rate: float = 0.01,
        history_minutes: int = 600,
        seed: int = 1,
    ) -> None:
        self.clock = ManualClock()
        self.store: Store = open_store("memory://")
        self.store.clock = self.clock
        self.names = [f"t{i}" for i in range(tenants)]
        self.store.register_versions(["v1", "v2"], default="v1")
        self.store.register_tenants(self.names)
        self.sink: SignalSink = open_sink(self.store)
        self.traffic = traffic
        self.error_rate = error_rate
        self.slow_rate = slow_rate
        self.random = random.Random(seed)
        self.controller = RolloutController(self.store, actor="ops", clock=self.clock)
        first = int(self.clock.time() // 60) - history_minutes
        self.sink.add(
            [
                self._row(first + m, t, "v1", _base(error_rate), _base(slow_rate), 10)
                for m in range(0, history_minutes, 10)
                for t in self.names
            ]
        )

    def _row(
        self, minute: int, tenant: str, version: str, error: Rate, slow: Rate, scale: int = 1
    ) -> SignalRow:
        n = self.traffic * scale
        e = min(n, poisson(n * error(tenant, version), self.random))
        s = min(n, poisson(n * slow(tenant, version), self.random))
        histogram = [0] * 15
        histogram[FAST], histogram[SLOW] = n - s, s
        return SignalRow(
            minute, tenant, version, n, (0, n - e, 0, 0, e), histogram=tuple(histogram)
        )

    def start(self, percent: float = 25, **options: object) -> list[str]:
        """Start rolling out v2; returns the tenants it reaches."""
        self.controller.start("v2", percent=percent, **options)  # type: ignore[arg-type]
        return self.on("v2")

    def on(self, version: str) -> list[str]:
        """The tenants served ``version`` now."""
        return [t for t in self.names if self.controller.explain(t).version == version]

    def minutes(
        self,
        count: int,
        error: Rate | None = None,
        slow: Rate | None = None,
        only: str | None = None,
    ) -> None:
        """``count`` minutes of traffic, each tenant on the version it is served now (``only``:
        just the tenants served that version)."""
        for _ in range(count):
            minute = int(self.clock.time() // 60)
            versions = {t: self.controller.explain(t).version for t in self.names}
            if only is not None:
                versions = {t: v for t, v in versions.items() if v == only}
            self.sink.add(
                [
                    self._row(
                        minute,
                        t,
                        v,
                        error or _base(self.error_rate),
                        slow or _base(self.slow_rate),
                    )
                    for t, v in versions.items()
                ]
            )
            self.clock.advance(60)

    def guard(
        self, holder: str = "g1", config: GuardConfig | None = None, *, log_actions: bool = True
    ) -> Guard:
        """A guard on this world."""
        return Guard(
            self.store,
            self.sink,
            config=config,
            clock=self.clock,
            holder=holder,
            log_actions=log_actions,
        )

"""When a timed rollout plan moves on by itself: the router drops its decisions right then.

A timed plan (``Rollout.auto``) raises the percent at known instants without any store write, so
no revision moves and no push arrives. The router asks this watch at every refresh whether a
step passed since the last one (drop the decision cache) and how long until the next (refresh
no later than that).
"""

from __future__ import annotations

from ..policy import Rollout


class TimedPlanWatch:
    """Remembers the next step of the current timed plan (Unix time) between refreshes."""

    def __init__(self) -> None:
        self._next_step: float | None = None

    def check(self, rollout: Rollout | None, now: float) -> tuple[bool, float | None]:
        """``(a step passed since the last check, seconds until the next step or None)`` for
        ``rollout`` at Unix time ``now``."""
        if rollout is None or not rollout.auto:
            self._next_step = None
            return False, None
        previous = self._next_step
        passed = previous is not None and now >= previous
        self._next_step = rollout.next_change(now)
        if self._next_step is None:
            return passed, None
        return passed, max(self._next_step - now, 0.0)

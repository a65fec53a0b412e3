"""One retry back-off for the package: exponential, capped, with full jitter where asked."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays that double from ``minimum`` to ``maximum``; :meth:`reset` after a healthy spell.

    ``jitter=True`` draws each delay uniformly from ``[0, delay]`` ("full jitter"), so many
    processes retrying the same server do not retry in step.
    """

    minimum: float = 0.1
    maximum: float = 5.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.maximum:
            raise ValueError(f"need 0 < minimum <= maximum, got {self.minimum}, {self.maximum}")
        self._next = self.minimum

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long, up to ``maximum``."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return random.uniform(0, delay) if self.jitter else delay

    def reset(self) -> None:
        """Start again from ``minimum`` (the last attempt succeeded)."""
        self._next = self.minimum


def attempt_delay(attempt: int, *, base: float = 0.001, cap: float = 0.05) -> float:
    """A jittered delay for retry number ``attempt`` of a contended write (0-based)."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))

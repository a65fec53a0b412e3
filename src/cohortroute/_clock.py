"""Injected time: code that waits or expires takes a clock, so tests drive time instead of sleeping.

A :class:`Clock` answers two questions: ``monotonic()`` for intervals and timeouts, ``time()`` for
wall-clock stamps stored in the store (audit entries, timed plan steps). :data:`SYSTEM` reads the
real clocks; :class:`ManualClock` is the one tests hold and advance.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """The two clocks a component reads."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (intervals, timeouts)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (timestamps written to the store)."""
        ...


class SystemClock:
    """The real clocks (``time.monotonic`` and ``time.time``)."""

    __slots__ = ()

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to, for tests: ``clock.advance(1.5)``."""

    def __init__(self, start: float = 1_000_000.0, *, wall: float = 1_790_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._offset = wall - start
        self._waiters: set[threading.Event] = set()

    def monotonic(self) -> float:
        """The current manual time."""
        return self._now

    def time(self) -> float:
        """The wall-clock time matching :meth:`monotonic`."""
        return self._now + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward (never backwards)."""
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward, not by {seconds!r} seconds")
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
        for event in waiters:
            event.set()

    def sleep(self, seconds: float) -> None:
        """A ``sleep`` for code under test that advances this clock instead of waiting."""
        self.advance(max(0.0, seconds))

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Block until ``event`` is set or this clock is advanced (see :func:`wait`)."""
        if timeout is not None and timeout <= 0:
            return event.is_set()
        with self._lock:
            self._waiters.add(event)
        try:
            return event.wait()
        finally:
            with self._lock:
                self._waiters.discard(event)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


class FunctionClock:
    """A :class:`Clock` over one ``() -> seconds`` function, for APIs that used to take one."""

    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read

    def monotonic(self) -> float:
        """The function's reading (assumed not to go backwards)."""
        return self._read()

    def time(self) -> float:
        """The function's reading."""
        return self._read()

    def __repr__(self) -> str:
        return f"FunctionClock({self._read!r})"


def wait(clock: Clock, event: threading.Event, timeout: float | None) -> bool:
    """Wait for ``event``, or until ``timeout`` seconds pass on ``clock`` (None: no timeout).

    A thread that waits for time to pass waits on the clock it was given, so a test can wake it
    by advancing a :class:`ManualClock` (which sets ``event`` at every advance: the caller may
    be woken before ``timeout`` and must check again what it waits for). Other clocks wait in
    real time. Returns whether ``event`` is set.
    """
    waiter = getattr(clock, "wait", None)
    if waiter is not None:
        return bool(waiter(event, timeout))
    return event.wait(timeout)


def as_clock(clock: Clock | Callable[[], float]) -> Clock:
    """``clock`` itself when it is a :class:`Clock`, else a clock reading the given function."""
    if callable(getattr(clock, "time", None)) and callable(getattr(clock, "monotonic", None)):
        return clock  # type: ignore[return-value]
    if not callable(clock):
        raise TypeError(f"a clock is a Clock or a function returning seconds, not {clock!r}")
    return FunctionClock(clock)

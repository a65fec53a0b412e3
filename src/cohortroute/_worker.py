"""A background worker thread that wakes on an injected clock to flush its owner's queue.

The owner (a recorder, a registrar) answers ``until_due()`` -- seconds until its next write,
``0.0`` when due, None when there is nothing to do -- and ``flush()``. The thread holds the owner
only by a weak reference, and never while it waits, so a dropped owner takes its thread with
it; it waits on the owner's clock (:func:`cohortroute._clock.wait`), so a test advancing a
:class:`~cohortroute._clock.ManualClock` wakes it. Started lazily by the owner, so a forked
child starts its own.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

from . import _clock
from ._clock import Clock

log = logging.getLogger(__name__)


class Flusher(Protocol):
    """What a worker drives."""

    def until_due(self) -> float | None: ...

    def flush(self) -> int: ...


class Wakeup:
    """What a worker shares with its owner (never the owner itself)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.stopped = False

    def stop(self) -> None:
        """End the worker (it finishes the write in progress, if any)."""
        self.stopped = True
        self.event.set()


def _work(ref: weakref.ReferenceType[Flusher], wakeup: Wakeup, clock: Clock, what: str) -> None:
    while True:
        owner = ref()
        if wakeup.stopped or owner is None:
            return
        timeout = owner.until_due()
        del owner  # never wait holding the owner: a dropped owner must be collectable
        _clock.wait(clock, wakeup.event, timeout)
        wakeup.event.clear()
        owner = ref()
        if wakeup.stopped or owner is None:
            return
        if owner.until_due() == 0.0:
            try:
                owner.flush()
            except Exception:  # the worker must outlive one bad write
                log.exception("cohortroute: %s failed", what)
        del owner


def start(owner: Flusher, clock: Clock, *, name: str, what: str) -> Wakeup:
    """Start a worker thread named ``name`` for ``owner``; ``what`` names its writes in logs."""
    wakeup = Wakeup()
    weakref.finalize(owner, wakeup.stop)
    threading.Thread(
        target=_work, args=(weakref.ref(owner), wakeup, clock, what), name=name, daemon=True
    ).start()
    return wakeup


class Worker:
    """An owner's worker thread, started on demand and stopped by :meth:`stop` (a later
    :meth:`running` starts another): the start-and-stop bookkeeping a recorder and a
    registrar share. The handle never refers to its owner, which stays collectable."""

    def __init__(self, clock: Clock, *, name: str, what: str) -> None:
        self._clock = clock
        self._name = name
        self._what = what
        self._lock = threading.Lock()
        self._wakeup: Wakeup | None = None

    def running(self, owner: Flusher) -> Wakeup:
        """The running worker's wake-up, the worker started now for ``owner`` if none is."""
        with self._lock:
            wakeup = self._wakeup
            if wakeup is None:
                wakeup = self._wakeup = start(owner, self._clock, name=self._name, what=self._what)
            return wakeup

    def stop(self) -> None:
        """End the running worker, if any (it finishes the write in progress)."""
        with self._lock:
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.stop()

    def forget(self) -> None:
        """In a fork's child: the thread does not exist there, and the lock may be held."""
        self._lock = threading.Lock()
        self._wakeup = None


def flush_then_stop(owner: Flusher, worker: Worker) -> None:
    """``owner.flush()``, then stop its worker even when the flush failed (an owner's close)."""
    try:
        owner.flush()
    finally:
        worker.stop()

"""The threads that call assignment backends with a ``timeout``: daemon threads.

A :class:`~concurrent.futures.ThreadPoolExecutor` would do, but the interpreter joins its
threads at exit: one backend that hangs (a flag service that never answers) would then hold up
the exit of the process -- a router's worker, or ``cohortroute explain --assign`` -- until it
returns, for ever if it never does. A caller already stops waiting after the backend's timeout;
these threads are daemons, so nothing waits for them at exit either.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DaemonCalls:
    """Run calls on at most ``size`` daemon threads, started as they are first needed.

    The caller bounds how many calls are outstanding at once (``size`` at most), so a call never
    waits for a free thread behind hung ones. The threads hold no reference to this object:
    dropped without :meth:`close`, it still lets its idle threads end.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        weakref.finalize(self, _stop, self._jobs, self._threads)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Call ``fn(*args)`` on one of the threads; its future holds the answer."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the backend calls are closed")
            self._jobs.put((future, fn, args))
            if len(self._threads) < self._size:
                thread = threading.Thread(
                    target=_work,
                    args=(self._jobs,),
                    name=f"{self._name}_{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        return future

    def close(self) -> None:
        """Cancel the calls not started; the threads end once their current call returns."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            self._threads.clear()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        _stop(self._jobs, threads)


def _work(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        future, fn, args = job
        if not future.set_running_or_notify_cancel():
            continue
        try:
            answer = fn(*args)
        except BaseException as exc:  # handed to the caller, as an executor does
            future.set_exception(exc)
        else:
            future.set_result(answer)
        del job, future, fn, args  # keep nothing of the call while idle


def _stop(jobs: queue.SimpleQueue[_Job | None], threads: list[threading.Thread]) -> None:
    """Wake every thread with the end mark (each ends once its current call returns)."""
    for _ in threads:
        jobs.put(None)

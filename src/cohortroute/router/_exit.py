"""Write what routers still queue for the registry when the process ends.

Tenants a router served in its last second wait in its :class:`~.registration.Registrar`'s
queue, and a signals recorder's counts since its last flush. They are written at interpreter
exit (``atexit``: a normal exit, ``sys.exit``, gunicorn's graceful shutdown), and on SIGTERM when
nobody else handles that signal: the handler writes the queues (waiting at most
:data:`EXIT_FLUSH_TIMEOUT` seconds) and then lets SIGTERM end the process as it would have.

uvicorn installs its own SIGTERM and SIGINT handlers before it imports the app, and once its
graceful shutdown is done it puts the previous handler back and raises the signal again: with
the default action, the process ends without ``atexit``. So the ASGI router also writes
everything when the server's lifespan shutdown completes (:func:`close_all`, called by
:mod:`.lifespan`); under uvicorn with ``--lifespan off`` the last flush interval is lost.
Nothing can run on SIGKILL: see :mod:`.registration` for what that loses.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Protocol

log = logging.getLogger(__name__)

#: The longest the SIGTERM handler waits for the queues to be written before the process ends.
EXIT_FLUSH_TIMEOUT = 2.0


class Flushable(Protocol):
    """What is flushed at exit: a registrar, a signals recorder."""

    def flush(self) -> int: ...


class Closable(Protocol):
    """What :func:`close_all` closes: a registrar, a signals recorder (each writes, then stops
    its thread; a later request starts it again)."""

    def close(self) -> None: ...


_live: weakref.WeakSet[Flushable] = weakref.WeakSet()
_installed = False


def flush_at_exit(owner: Flushable) -> None:
    """Flush ``owner`` when the process exits (held weakly: a dropped router is not kept)."""
    _live.add(owner)
    _install_sigterm()


def flush_all() -> None:
    """Flush every live owner now; a failure is logged, never raised."""
    for owner in list(_live):
        try:
            # A recorder says at exit how many rows it could not write: they are lost now.
            getattr(owner, "flush_at_exit", owner.flush)()
        except Exception:  # at exit, one store's failure must not stop the others' writes
            log.exception("cohortroute: could not write the registry queue at exit")


def close_all(*owners: Closable | None) -> None:
    """Close each owner given (None: skipped) now; a failure is logged, never raised."""
    for owner in owners:
        if owner is None:
            continue
        try:
            owner.close()
        except Exception:  # one store's failure must not stop the others' writes
            log.exception("cohortroute: could not write what was queued at shutdown")


def _install_sigterm() -> None:
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # no signals here (an embedded interpreter)
        log.debug("cohortroute: SIGTERM handler not installed", exc_info=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Written from another thread: this one may hold a lock the write needs (it was interrupted
    # anywhere), so it only waits, and for a bounded time.
    writer = threading.Thread(target=flush_all, name="cohortroute-exit-flush", daemon=True)
    writer.start()
    writer.join(EXIT_FLUSH_TIMEOUT)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


atexit.register(flush_all)

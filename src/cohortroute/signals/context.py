"""Which request a thread or task is handling: for the WSGI hot path and the log filter.

A WSGI request is handled by one thread from call to close, so its per-request state lives in
a :class:`Slot` per thread, made once and reused: recording a request then allocates nothing
(on this project's machines an allocation costs as much as the rest of the counting). The
slot's :attr:`Slot.start` is the ``start_response`` handed to the app: it notes the status
and calls the server's. A request started while the thread's slot is busy (an app calling
another wrapped app) gets a slot of its own.

ASGI requests share a thread, so they use a context variable (:data:`CURRENT`) instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar

from .._types import OptExcInfo, StartResponse

log = logging.getLogger(__name__)

#: ``(tenant, version)`` of the ASGI request being handled in this context.
CURRENT: ContextVar[tuple[str, str]] = ContextVar("cohortroute_request", default=("", ""))
#: ``[True]`` once a :class:`~.logfilter.TenantLogFilter` exists in this process: until then
#: nothing reads :data:`CURRENT`, and the ASGI wrapper does not set it (a set and a reset cost
#: about a microsecond a request on this project's machines).
READERS = [False]
#: The status a slot holds until the app calls ``start_response``: counted as 5xx.
NO_STATUS = "500 no response"

#: Per-thread state: ``THREAD.slot`` is the thread's :class:`Slot`.
THREAD = threading.local()


class Slot:
    """One thread's WSGI request in progress: its status, server ``start_response``, tenant."""

    __slots__ = ("busy", "start", "start_response", "status", "tenant", "version")

    def __init__(self) -> None:
        self.busy = False
        self.status = NO_STATUS
        self.start_response: StartResponse | None = None
        self.tenant = ""
        self.version = ""
        self.start = self._make_start()

    def _make_start(self) -> Callable[..., Callable[[bytes], object]]:
        slot = self

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            slot.status = status
            start_response = slot.start_response
            if start_response is None:
                raise RuntimeError("start_response called after the request was finished")
            return start_response(status, headers, exc_info)

        return start

    def release(self) -> None:
        """The request is finished: free the slot for the thread's next one."""
        self.start_response = None
        self.tenant = self.version = ""
        self.status = NO_STATUS
        self.busy = False


def thread_slot() -> Slot:
    """This thread's slot (made on first use)."""
    try:
        slot: Slot = THREAD.slot
    except AttributeError:
        slot = THREAD.slot = Slot()
    return slot


def current() -> tuple[str, str]:
    """``(tenant, version)`` of the request this thread or task handles (``("", "")``: none)."""
    slot: Slot | None = getattr(THREAD, "slot", None)
    if slot is not None and slot.busy and slot.version:
        return slot.tenant, slot.version
    return CURRENT.get()

"""The WSGI signal wrapper: counts each request of one version until its body is closed.

The request's state lives in the thread's :class:`~.context.Slot` (nothing is allocated for a
request whose body is a list or tuple, which is complete when the app returns and is counted
then). A streaming body is passed through chunk by chunk and counted when the server closes
it; until then the thread's slot stays with that request.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from time import thread_time

from .._clock import Clock
from .._types import StartResponse, WSGIApp, WSGIEnvironment
from ..router.base import TENANT_KEY
from ._rows import DURATION, HISTOGRAM, SLOW
from .context import NO_STATUS, THREAD, Slot, thread_slot
from .counters import FIRST_BOUND, FIVE_XX, STATUS_COLUMN, VersionCounter
from .model import HISTOGRAM_BOUNDS
from .recorder import Recorder
from .tenants import Tenants

log = logging.getLogger(__name__)

# Status line -> its column; most apps send a handful of distinct lines.
_COLUMNS: dict[str, int] = {}
_MAX_LINES = 256


def status_line_column(line: str) -> int:
    """The status column of a WSGI status line (``"404 Not Found"`` -> the 4xx column)."""
    column = _COLUMNS.get(line)
    if column is None:
        column = STATUS_COLUMN.get(line[:1], FIVE_XX) if line != NO_STATUS else FIVE_XX
        if len(_COLUMNS) < _MAX_LINES:
            _COLUMNS[line] = column
    return column


class SignalsWSGI(VersionCounter):
    """Counts the requests of one WSGI version (see the module docstring)."""

    def __init__(
        self, app: WSGIApp, version: str, recorder: Recorder, clock: Clock, tenants: Tenants
    ) -> None:
        super().__init__(version, recorder, clock)
        self.app = app
        self._tenants = tenants
        self._log_version = version if recorder.config.log_context else ""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            slot: Slot = THREAD.slot
        except AttributeError:
            slot = thread_slot()
        if slot.busy:
            slot = Slot()  # an app calling another wrapped app in the same thread
        read_clock = self._read_clock
        began = read_clock()
        try:  # a subscript is cheaper than .get(); the router always sets the key
            tenant = environ[TENANT_KEY]
        except KeyError:
            tenant = None
        if not tenant:
            tenant = self._tenants.of_environ(environ)
        slot.busy = True
        slot.status = NO_STATUS
        slot.start_response = start_response
        slot.tenant = tenant
        slot.version = self._log_version
        cpu = thread_time() if self._cpu_every and self.cpu_due() else 0.0
        try:
            body = self.app(environ, slot.start)
        except BaseException:
            slot.busy = False
            self.finish(tenant, FIVE_XX, began, True, cpu)
            raise
        if type(body) is not list and type(body) is not tuple:
            return _Body(body, self, slot, tenant, began, cpu)
        end = read_clock()
        slot.busy = False
        status = slot.status
        try:
            column = _COLUMNS[status]
        except KeyError:
            column = status_line_column(status)
        if cpu or end >= self._rollover:
            self.finish(tenant, column, began, False, cpu)
            return body
        # VersionCounter._record inlined for the common case, a warm tenant: a method call is
        # a sizeable part of the cost. The same rule holds: from the dict read to the last
        # increment, nothing calls a function.
        duration = end - began
        # bucket_of() inlined: most requests fall in the first bucket, no call needed.
        bucket = (
            HISTOGRAM
            if duration <= FIRST_BOUND
            else HISTOGRAM + bisect_left(HISTOGRAM_BOUNDS, duration)
        )
        try:
            row = self._counts[tenant]
        except KeyError:  # the tenant's first request this flush period
            self._record(tenant, column, began, end, False, 0.0)
            return body
        row[column] += 1
        row[DURATION] += duration
        row[bucket] += 1
        if duration > self._slo:
            row[SLOW] += 1
        return body

    def finish(self, tenant: str, column: int, began: float, failed: bool, cpu: float) -> None:
        """Count a request that ends now (``cpu``: thread time at its start, or 0)."""
        end = self._read_clock()
        if cpu:
            cpu = (thread_time() - cpu) * self._cpu_every
        self._record(tenant, column, began, end, failed, cpu)


class _Body:
    """A streaming WSGI body, passed through; the request is counted when it is closed."""

    __slots__ = ("_began", "_body", "_counter", "_cpu", "_failed", "_slot", "_tenant")

    def __init__(
        self,
        body: Iterable[bytes],
        counter: SignalsWSGI,
        slot: Slot,
        tenant: str,
        began: float,
        cpu: float,
    ) -> None:
        self._body = body
        self._counter = counter
        self._slot: Slot | None = slot
        self._tenant = tenant
        self._began = began
        self._cpu = cpu
        self._failed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except Exception:
            self._failed = True
            raise
        finally:
            slot, self._slot = self._slot, None
            if slot is not None:  # counted once, however often the server closes
                status = slot.status
                slot.busy = False
                failed = self._failed
                column = FIVE_XX if failed else status_line_column(status)
                self._counter.finish(self._tenant, column, self._began, failed, self._cpu)

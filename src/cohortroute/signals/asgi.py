"""The ASGI signal wrapper: counts each HTTP request of one version until its final body message.

``send`` is wrapped to note the status of ``http.response.start`` and to count the request when
the ``http.response.body`` message with ``more_body`` false (or the extensions' final
``http.response.pathsend`` / ``http.response.zerocopysend``) is handed to the server; bodies pass
through untouched. An exception before that counts as 5xx (and is raised); a response never
finished counts as 5xx, unless the app had received ``http.disconnect`` (a stream the client
closed, which Starlette's StreamingResponse ends by returning): then it counts with the status
it started with, or as 4xx when none (nginx's 499); a client gone while the last body is sent
does not make it a 5xx.
Websocket and lifespan scopes pass through uncounted. CPU time is not sampled: an event loop's
thread time belongs to every task on it.

Standalone (:func:`~.wrappers.Signals`), the wrapper writes what is counted when the app answers
``lifespan.shutdown.complete``, before the server hears it: uvicorn's workers end without running
``atexit`` (see :mod:`cohortroute.router._exit`). Inside a router, the router drives lifespan and
does the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import anyio

from .._clock import Clock
from .._types import ASGIApp, Message, Receive, Scope, Send
from ..router.base import TENANT_KEY
from .context import CURRENT, READERS
from .counters import FIVE_XX, VersionCounter, status_column
from .recorder import Recorder
from .tenants import Tenants

log = logging.getLogger(__name__)


#: Extension messages that can end a response instead of a body message with ``more_body``
#: false: Starlette's FileResponse ends with ``http.response.pathsend`` when the server offers
#: it (Granian), and ``http.response.zerocopysend`` streams a file with ``more_body``.
_FINAL_EXTENSIONS = frozenset({"http.response.pathsend", "http.response.zerocopysend"})


#: The status column of a request whose client left before a response was started.
CLIENT_GONE = 4


def _final(message: Message) -> bool:
    """Whether an extension message (see :data:`_FINAL_EXTENSIONS`) completes the response."""
    return message["type"] == "http.response.pathsend" or not message.get("more_body", False)


class SignalsASGI(VersionCounter):
    """Counts the HTTP requests of one ASGI version (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, version: str, recorder: Recorder, clock: Clock, tenants: Tenants
    ) -> None:
        super().__init__(version, recorder, clock)
        self.app = app
        self._tenants = tenants
        self._log_context = recorder.config.log_context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._closing_at_shutdown(send)
            await self.app(scope, receive, send)
            return
        read_clock = self._read_clock
        record = self._record
        began = read_clock()
        tenant = scope.get(TENANT_KEY) or self._tenants.of_scope(scope)
        token = CURRENT.set((tenant, self.version)) if self._log_context and READERS[0] else None
        column = FIVE_XX
        counted = started = gone = False

        # A plain function returning the server's send(message) awaitable: a message costs one
        # call, not a coroutine of its own (measured: a coroutine or an object per request
        # costs several times more on this path).
        def observe(message: Message) -> Awaitable[None]:
            nonlocal column, counted, started
            kind = message["type"]
            if kind == "http.response.start":
                column = status_column(int(message["status"]))
                started = True
            elif (
                kind == "http.response.body" and not counted and not message.get("more_body", False)
            ) or (kind in _FINAL_EXTENSIONS and not counted and _final(message)):
                counted = True
                record(tenant, column, began, read_clock(), False, 0.0)
            return send(message)

        async def watch() -> Message:
            # notes the client leaving: a stream it stops then is not the version's failure
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            return message

        try:
            await self.app(scope, watch, observe)
        except BaseException:
            if not counted:
                counted = True
                record(tenant, FIVE_XX, began, read_clock(), True, 0.0)
            raise
        finally:
            if token is not None:
                CURRENT.reset(token)
        if not counted:  # the app returned without finishing its response
            # the client left: the status it was sent, or 4xx (nginx's 499); else a 5xx
            final = (column if started else CLIENT_GONE) if gone else FIVE_XX
            record(tenant, final, began, read_clock(), False, 0.0)

    def _closing_at_shutdown(self, send: Send) -> Send:
        """``send``, writing the counts (closing the recorder) before it passes on the app's
        ``lifespan.shutdown.complete``."""

        async def closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                try:
                    await anyio.to_thread.run_sync(self.close)
                except Exception:  # the server must still hear that the app has shut down
                    log.exception("cohortroute: could not write the signals at shutdown")
            await send(message)

        return closing

"""The ASGI signal wrapper: counts each HTTP request of one version until its final body message.

``send`` is wrapped to note the status of ``http.response.start`` and to count the request once
the ``http.response.body`` message with ``more_body`` false has been sent; bodies pass through
untouched. An exception before that counts as 5xx (and is raised); a response never finished
counts as 5xx. Websocket and lifespan scopes pass through uncounted. CPU time is not sampled:
an event loop's thread time belongs to every task on it.
"""

from __future__ import annotations

import logging
from typing import Any

from .._clock import Clock
from .._types import ASGIApp, Message, Receive, Scope, Send
from ..router.base import TENANT_KEY
from .context import CURRENT
from .counters import FIVE_XX, VersionCounter, status_column
from .recorder import Recorder
from .tenants import Tenants

log = logging.getLogger(__name__)


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
            await self.app(scope, receive, send)
            return
        read_clock = self._read_clock
        began = read_clock()
        tenant = scope.get(TENANT_KEY) or self._tenants.of_scope(scope)
        token = CURRENT.set((tenant, self.version)) if self._log_context else None
        state: list[Any] = [FIVE_XX, False]  # [status column, counted]

        async def observe(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                state[0] = status_column(int(message["status"]))
            elif kind == "http.response.body" and not message.get("more_body", False):
                await send(message)
                if not state[1]:
                    state[1] = True
                    self._record(tenant, state[0], began, read_clock(), False, 0.0)
                return
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except BaseException:
            if not state[1]:
                state[1] = True
                self._record(tenant, FIVE_XX, began, read_clock(), True, 0.0)
            raise
        finally:
            if token is not None:
                CURRENT.reset(token)
        if not state[1]:  # the app returned without finishing its response
            self._record(tenant, FIVE_XX, began, read_clock(), False, 0.0)

"""Lifespan for several mounted ASGI apps: start each in order, stop them in reverse.

A server sends one lifespan scope to the router; the router runs one lifespan conversation per
ASGI version. If a version fails to start, the ones already started are shut down in reverse
order and the server is told ``lifespan.startup.failed``. A version that does not speak lifespan
(it raises before answering, as the ASGI spec allows) is simply left out. WSGI versions never
see lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .._types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class _Child:
    """One version's lifespan conversation, driven through in-memory queues."""

    def __init__(self, name: str, app: ASGIApp, scope: Scope) -> None:
        self.name = name
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        child_scope = dict(scope)  # the "state" dict stays shared, as the spec intends
        self._task = asyncio.ensure_future(app(child_scope, self._inbox.get, self._outbox.put))

    async def _exchange(self, message: Message) -> tuple[str, str]:
        """Send one event; return (outcome, message): complete, failed or unsupported."""
        await self._inbox.put(message)
        getter = asyncio.ensure_future(self._outbox.get())
        done, _ = await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            reply = getter.result()
            kind = str(reply.get("type", ""))
            if kind.endswith(".complete"):
                return "complete", ""
            if kind.endswith(".failed"):
                return "failed", str(reply.get("message", ""))
            return "failed", f"unexpected lifespan message {kind!r}"
        getter.cancel()
        exc = self._task.exception()
        if exc is not None:
            return "unsupported", f"{type(exc).__name__}: {exc}"
        return "unsupported", "returned without answering"

    async def startup(self) -> tuple[str, str]:
        return await self._exchange({"type": "lifespan.startup"})

    async def shutdown(self) -> tuple[str, str]:
        outcome = await self._exchange({"type": "lifespan.shutdown"})
        await self.finish()
        return outcome

    async def finish(self) -> None:
        if not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()  # mark retrieved


async def run_lifespan(
    versions: Sequence[tuple[str, ASGIApp]], scope: Scope, receive: Receive, send: Send
) -> None:
    """Drive the server's lifespan scope across every ASGI version."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    started: list[_Child] = []
    for name, app in versions:
        child = _Child(name, app, scope)
        outcome, text = await child.startup()
        if outcome == "complete":
            started.append(child)
            continue
        if outcome == "unsupported":
            log.debug("cohortroute: version %s does not support lifespan (%s)", name, text)
            await child.finish()
            continue
        await child.finish()
        for other in reversed(started):
            await other.shutdown()
        await send(
            {
                "type": "lifespan.startup.failed",
                "message": f"version {name} failed to start: {text}".strip(),
            }
        )
        return
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    failures = []
    for child in reversed(started):
        outcome, text = await child.shutdown()
        if outcome == "failed":
            failures.append(f"version {child.name} failed to shut down: {text}")
    if failures:
        await send({"type": "lifespan.shutdown.failed", "message": "; ".join(failures)})
    else:
        await send({"type": "lifespan.shutdown.complete"})

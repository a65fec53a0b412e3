"""Lifespan for several mounted ASGI apps: start each in order, stop them in reverse.

A server sends one lifespan scope to the router; the router runs one lifespan conversation per
ASGI app, each in a task of its own (an anyio task group, so asyncio and trio alike), the way a
server drives a bare app: one app's cancel scopes or crashed background tasks never reach
another's. An app mounted under several version names is started once.

Each app gets its own lifespan ``state`` dict (seeded with what the server's held when the
router started), and every request carries a shallow copy of its version's state, as servers
do for a bare app: the per-version dicts travel to requests under :data:`STATES_KEY` in the
server's state, which the server copies into every request.

If an app fails to start (it answers ``lifespan.startup.failed``, or raises or returns after
receiving ``lifespan.startup`` without answering), the apps already started are shut down in
reverse order, the server is told ``lifespan.startup.failed`` and the app's exception is raised,
as a bare app does (test clients raise it at enter). An app that raises or returns before it
calls ``receive()`` does not speak lifespan (the ASGI spec allows it) and is left out; so is one
that sends a message other than a lifespan one first (a bare app answering every scope with a
response): that send raises in the app, as a server's does. Shutdown
failures are reported the same way. WSGI versions never see lifespan.

When every app has shut down, ``on_shutdown`` runs (in a worker thread: it writes to the store):
the router writes the signal counts and registry queue it still holds there, because a server
may end the process without running ``atexit`` (uvicorn's workers re-raise the SIGTERM or SIGINT
that stopped them, with its default action, once the lifespan shutdown is done).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._types import ASGIApp, Message, Receive, Scope, Send
from ..errors import LifespanError

log = logging.getLogger(__name__)

#: The key, in the server's lifespan state, of version name -> that version's lifespan state.
STATES_KEY = "cohortroute.states"
#: How long an app may take to end after its last lifespan answer before it is cancelled.
END_GRACE = 5.0


class _Child:
    """One app's lifespan conversation, run in a task, driven through memory streams."""

    def __init__(self, names: Sequence[str], app: ASGIApp, scope: Scope) -> None:
        self.label = ", ".join(names)
        self.scope = scope
        self._app = app
        self._inbox_in, self._inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._outbox_in, self._outbox = anyio.create_memory_object_stream[Message](math.inf)
        self.received = False
        self.error: Exception | None = None
        self.ended = anyio.Event()

    async def run(self) -> None:
        try:
            await self._app(self.scope, self._receive, self._send)
        except Exception as exc:
            self.error = exc
        finally:
            self._outbox_in.close()
            self.ended.set()

    async def _receive(self) -> Message:
        self.received = True
        return await self._inbox.receive()

    async def _send(self, message: Message) -> None:
        # As servers do: a message that is not a lifespan one raises in the app, so an app that
        # answers every scope with a response does not speak lifespan (it is left out, as
        # uvicorn and hypercorn serve it bare) instead of failing the whole router's startup.
        kind = str(message.get("type", ""))
        if not kind.startswith("lifespan."):
            raise RuntimeError(
                f"sent {kind!r} in the lifespan scope: an ASGI app that does not support "
                'lifespan should raise or return on scope["type"] == "lifespan"'
            )
        await self._outbox_in.send(message)

    async def exchange(self, kind: str) -> tuple[str, str]:
        """Send ``lifespan.<kind>``; return (outcome, text): complete, failed or unsupported."""
        await self._inbox_in.send({"type": f"lifespan.{kind}"})
        try:
            reply = await self._outbox.receive()
        except anyio.EndOfStream:
            if not self.received:
                return "unsupported", self._error_text("returned")
            return "failed", self._error_text("returned without answering")
        answer = str(reply.get("type", ""))
        if answer == f"lifespan.{kind}.complete":
            return "complete", ""
        if answer == f"lifespan.{kind}.failed":
            await self.wait_end()
            return "failed", str(reply.get("message", "")) or self._error_text("")
        return "failed", f"answered {answer!r} to lifespan.{kind}"

    def _error_text(self, default: str) -> str:
        if self.error is None:
            return default
        return f"{type(self.error).__name__}: {self.error}"

    async def wait_end(self) -> None:
        with anyio.move_on_after(END_GRACE):
            await self.ended.wait()

    def close(self) -> None:
        for stream in (self._inbox_in, self._inbox, self._outbox_in, self._outbox):
            stream.close()


def _seeded(scope: Scope) -> Scope:
    """A child's lifespan scope: its own copy, with its own state when the server has one."""
    child = dict(scope)
    if "state" in scope:
        child["state"] = {k: v for k, v in scope["state"].items() if k != STATES_KEY}
    return child


class Lifespan:
    """Drives the server's lifespan scope across every mounted ASGI app."""

    def __init__(
        self,
        apps: Sequence[tuple[Sequence[str], ASGIApp]],
        versions: Sequence[str],
        on_states: Callable[[], None],
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self._apps = list(apps)
        self._versions = list(versions)
        self._on_states = on_states  # requests should look for their version's state now
        self._on_shutdown = on_shutdown  # write what the router still holds, before the exit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        children: list[_Child] = []
        try:
            async with anyio.create_task_group() as group:
                try:
                    ending = await self._serve(group, children, scope, receive, send)
                finally:
                    group.cancel_scope.cancel()
        finally:
            for child in children:
                child.close()
        # Outside the task group, so that what the server raises on a failed answer (hypercorn
        # does, to stop) and the app's own exception reach the server as they are, not grouped.
        kind, text, failure = ending
        await send({"type": kind, "message": text} if text else {"type": kind})
        if failure is not None:
            raise failure

    async def _serve(
        self, group: TaskGroup, children: list[_Child], scope: Scope, receive: Receive, send: Send
    ) -> tuple[str, str, Exception | None]:
        """Start, serve until the server's shutdown, stop: the last message for the server
        (its type and text) and the exception to raise after it when an app failed.

        The server's ``send`` is the caller's, except for ``lifespan.startup.complete``."""
        started: list[_Child] = []
        states: dict[str, Any] = {}
        for names, app in self._apps:
            child = _Child(names, app, _seeded(scope))
            children.append(child)
            group.start_soon(child.run)
            outcome, text = await child.exchange("startup")
            if outcome == "complete":
                started.append(child)
            elif outcome == "unsupported":
                log.debug("cohortroute: version %s does not speak lifespan (%s)", child.label, text)
            else:
                message = f"version {child.label} failed to start: {text}".strip()
                await self._stop(started)
                return "lifespan.startup.failed", message, _raised(child, message)
            for name in names:
                states[name] = child.scope.get("state")
        if "state" in scope:
            for name in self._versions:
                states.setdefault(name, None)
                if states[name] is None:
                    states[name] = _seeded(scope)["state"]
            scope["state"][STATES_KEY] = states
            self._on_states()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        failures = await self._stop(started)
        if self._on_shutdown is not None:
            await self._shutdown_hook(self._on_shutdown)
        if failures:
            text = "; ".join(message for _, message in failures)
            return "lifespan.shutdown.failed", text, _raised(*failures[0])
        return "lifespan.shutdown.complete", "", None

    @staticmethod
    async def _shutdown_hook(hook: Callable[[], None]) -> None:
        try:
            await anyio.to_thread.run_sync(hook)
        except Exception:  # the apps are stopped: the server must hear so, whatever the store
            log.exception("cohortroute: could not write what the router held at shutdown")

    async def _stop(self, started: list[_Child]) -> list[tuple[_Child, str]]:
        failures = []
        for child in reversed(started):
            outcome, text = await child.exchange("shutdown")
            if outcome != "complete":
                message = f"version {child.label} failed to shut down: {text}".strip()
                log.error("cohortroute: %s", message)
                failures.append((child, message))
            await child.wait_end()
        return failures


def _raised(child: _Child, message: str) -> Exception:
    """The exception the router raises for a failed app: its own when it raised one."""
    if child.error is not None:
        if hasattr(child.error, "add_note"):
            child.error.add_note(message)
        return child.error
    return LifespanError(f"{message}; see that version's logs for why")

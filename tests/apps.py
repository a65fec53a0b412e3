"""Tiny WSGI and ASGI versions used by the router tests: each says who it is and why."""

from __future__ import annotations

from typing import Any, Protocol

from asgiref.testing import ApplicationCommunicator


def wsgi_version(name: str) -> Any:
    """A WSGI app answering ``<name> <tenant> <reason> <script>|<path>``."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        decision = environ["cohortroute.decision"]
        body = (
            f"{name} {decision.tenant} {decision.reason} "
            f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}"
        )
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return app


def asgi_version(name: str, events: list[str] | None = None, fail_startup: bool = False) -> Any:
    """An ASGI app with lifespan; records lifespan events in ``events``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if events is not None:
                        events.append(f"{name}:startup")
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "boom"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if events is not None:
                        events.append(f"{name}:shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            decision = scope["cohortroute.decision"]
            await send({"type": "websocket.send", "text": f"{name} {decision.tenant}"})
            await send({"type": "websocket.close"})
            return
        decision = scope["cohortroute.decision"]
        where = f"{scope.get('root_path', '')}|{scope['path']}"
        body = f"{name} {decision.tenant} {decision.reason} {where}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    return app


class Communicator(Protocol):
    """The typed face of asgiref's ApplicationCommunicator (asgiref ships no annotations)."""

    async def send_input(self, message: dict[str, Any]) -> None: ...

    async def receive_output(self, timeout: float = 1) -> dict[str, Any]: ...

    async def wait(self, timeout: float = 1) -> None: ...


def communicator(app: Any, scope: dict[str, Any]) -> Communicator:
    """Run ``app`` on ``scope`` in process, talking to it message by message."""
    comm: Communicator = ApplicationCommunicator(app, scope)  # type: ignore[no-untyped-call]
    return comm

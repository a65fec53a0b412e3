"""ASGI lifespan through the router, with the clients people test with: Starlette's TestClient,
httpx's ASGITransport under asgi-lifespan, on asyncio and trio.

Each version has its own lifespan state and each request a copy of its version's; a failing
startup or shutdown raises at once; the same app under two names starts once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cohortroute import CohortRouter
from cohortroute.errors import LifespanError

from .apps import asgi_version


def stateful(name: str, events: list[str] | None = None, fail: str = "") -> Starlette:
    """A Starlette version whose lifespan yields {"version": name}; answers state.version."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if events is not None:
            events.append(f"{name}:startup")
        if fail == "startup":
            raise RuntimeError(f"{name} cannot reach its database")
        yield {"version": name, "client": object()}
        if events is not None:
            events.append(f"{name}:shutdown")
        if fail == "shutdown":
            raise RuntimeError(f"{name} could not flush")

    async def home(request: Request) -> PlainTextResponse:
        request.state.scratch = "mine"  # a request's copy: never reaches the lifespan state
        return PlainTextResponse(f"{name} sees {request.state.version}")

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


def router(apps: dict[str, Any]) -> Any:
    made = CohortRouter(apps, domains=["example.com"], register_tenants=False)
    made.store.pin("acme", "v2")
    return made


def test_each_version_sees_its_own_lifespan_state_in_test_client() -> None:
    app = router({"v1": stateful("v1"), "v2": stateful("v2"), "v3": stateful("v3")})
    with TestClient(app, base_url="http://globex.example.com") as client:
        assert client.get("/").text == "v1 sees v1"
        assert client.get("/", headers={"host": "acme.example.com"}).text == "v2 sees v2"


def test_each_version_sees_its_own_lifespan_state_with_httpx_and_asgi_lifespan() -> None:
    app = router({"v1": stateful("v1"), "v2": stateful("v2")})

    async def run() -> list[str]:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport) as client:
                texts = []
                for host in ("acme.example.com", "globex.example.com", "acme.example.com"):
                    response = await client.get(f"http://{host}/")
                    texts.append(response.text)
                return texts

    assert anyio.run(run) == ["v2 sees v2", "v1 sees v1", "v2 sees v2"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_lifespan_and_state_on_any_async_library(backend: Literal["asyncio", "trio"]) -> None:
    events: list[str] = []
    app = router({"v1": stateful("v1", events), "v2": stateful("v2", events)})
    with TestClient(app, backend=backend, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "v2 sees v2"
    assert events == ["v1:startup", "v2:startup", "v2:shutdown", "v1:shutdown"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_failed_startup_raises_at_enter_in_test_client(
    backend: Literal["asyncio", "trio"],
) -> None:
    events: list[str] = []
    app = router({"v1": stateful("v1", events), "v2": stateful("v2", events, fail="startup")})
    with (
        pytest.raises(RuntimeError, match="v2 cannot reach its database"),
        TestClient(app, backend=backend),
    ):
        pass
    assert events == ["v1:startup", "v2:startup", "v1:shutdown"]


def test_failed_startup_raises_at_enter_with_asgi_lifespan() -> None:
    app = router({"v1": stateful("v1"), "v2": stateful("v2", fail="startup")})

    async def run() -> None:
        async with LifespanManager(app, startup_timeout=2):
            pass

    with pytest.raises(RuntimeError, match="v2 cannot reach its database") as caught:
        anyio.run(run)
    assert "version v2 failed to start" in "".join(getattr(caught.value, "__notes__", []))


def test_failed_shutdown_raises_at_exit_in_test_client() -> None:
    app = router({"v1": stateful("v1", fail="shutdown"), "v2": stateful("v2")})
    client = TestClient(app)
    client.__enter__()
    with pytest.raises(RuntimeError, match="v1 could not flush"):
        client.__exit__(None, None, None)


def test_a_startup_failed_answer_without_an_exception_raises_lifespan_error() -> None:
    app = router({"v1": asgi_version("v1"), "v2": asgi_version("v2", fail_startup=True)})
    with pytest.raises(LifespanError, match="version v2 failed to start: boom"), TestClient(app):
        pass


def test_a_version_crashing_after_startup_without_answering_is_a_failure() -> None:
    async def crashes(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        raise ConnectionError("lost the broker")

    app = router({"v1": asgi_version("v1"), "v2": crashes})
    with pytest.raises(ConnectionError, match="lost the broker"), TestClient(app):
        pass


def test_a_version_that_does_not_speak_lifespan_is_still_served() -> None:
    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "no lifespan here"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    app = router({"v1": stateful("v1"), "v2": http_only})
    with TestClient(app, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "plain"


def test_the_same_app_under_two_names_starts_once_and_shares_its_state() -> None:
    events: list[str] = []
    shared = stateful("shared", events)
    app = router({"v1": shared, "v2": shared, "v3": stateful("v3", events)})
    with TestClient(app, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "shared sees shared"
        assert client.get("/", headers={"host": "x.example.com"}).text == "shared sees shared"
    assert events == ["shared:startup", "v3:startup", "v3:shutdown", "shared:shutdown"]


def test_a_request_state_is_a_copy_of_its_version_state() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["pool"] = "v2-pool"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope["state"])
        scope["state"]["scribble"] = True
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    routed = router({"v1": stateful("v1"), "v2": app})
    with TestClient(routed, base_url="http://acme.example.com") as client:
        client.get("/")
        client.get("/")
    assert seen[0] == {"pool": "v2-pool", "scribble": True}
    assert seen[1] == {"pool": "v2-pool", "scribble": True}
    assert seen[0] is not seen[1]

"""ASGI 2 apps, class-based endpoints and declared interfaces are mounted as what they are."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse

import cohortroute
from cohortroute import ASGICohortRouter, CohortRouter, WSGICohortRouter
from cohortroute.errors import ConfigurationError
from cohortroute.router.interfaces import kind_of

from .apps import asgi_version, wsgi_version
from .test_router_asgi import lifespan, request


async def _answer(send: Any, text: str) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})


class Asgi2App:
    """An ASGI 2 app: the class is called with the scope, the instance awaited."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await _answer(send, f"asgi2 {self.scope['cohortroute.tenant']}")


def asgi2_function(scope: dict[str, Any]) -> Any:
    """An ASGI 2 app as a plain function: its shape cannot tell it from WSGI."""

    async def instance(receive: Any, send: Any) -> None:
        await _answer(send, "asgi2 function")

    return instance


class Endpoint(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("endpoint")


def test_kinds_by_shape() -> None:
    assert kind_of(asgi_version("v")) == "asgi3"
    assert kind_of(wsgi_version("v")) == "wsgi"
    assert kind_of(Asgi2App) == "asgi2"
    assert kind_of(Endpoint) == "asgi3"  # instances are awaitable
    assert kind_of(cohortroute.asgi2(asgi2_function)) == "asgi2"
    assert kind_of(cohortroute.wsgi(asgi_version("v"))) == "wsgi"


@pytest.mark.parametrize(
    ("app", "body"),
    [
        (Asgi2App, "asgi2 acme"),
        (Endpoint, "endpoint"),
        (cohortroute.asgi2(asgi2_function), "asgi2 function"),
    ],
)
def test_asgi2_apps_and_endpoints_are_served_as_asgi(app: Any, body: str) -> None:
    router = CohortRouter({"v1": app, "v2": wsgi_version("v2")}, domains=["example.com"])
    assert isinstance(router, ASGICohortRouter)
    assert request(router, "acme.example.com") == (200, body)


def test_an_asgi2_app_gets_lifespan() -> None:
    router = CohortRouter({"v1": Asgi2App}, domains=["example.com"])
    out = lifespan(router)
    assert [m["type"] for m in out] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_declared_wsgi_makes_a_wsgi_router_without_a_wrapper() -> None:
    app = wsgi_version("v1")
    router = CohortRouter({"v1": cohortroute.wsgi(app)}, domains=["example.com"])
    assert isinstance(router, WSGICohortRouter)
    assert router._dispatch.target("v1") is app


def test_a_declared_asgi_version_cannot_be_served_by_a_wsgi_router() -> None:
    with pytest.raises(ConfigurationError, match="ASGI apps"):
        CohortRouter(
            {"v1": cohortroute.asgi2(asgi2_function)}, domains=["example.com"], interface="wsgi"
        )

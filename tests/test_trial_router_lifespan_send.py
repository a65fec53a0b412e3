"""A version that answers the lifespan scope as if it were a request (a bare ASGI app that never
looks at ``scope["type"]``) does not speak lifespan: uvicorn and hypercorn serve such an app bare
("lifespan appears unsupported"), so a router mounting it must serve it too, not stop."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from cohortroute import CohortRouter

from .apps import asgi_version


def router(apps: dict[str, Any]) -> Any:
    made = CohortRouter(apps, domains=["example.com"], register_tenants=False)
    made.store.pin("acme", "v2")
    return made


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """The smallest ASGI app: answers whatever scope with a response, never reads lifespan."""
    await PlainTextResponse("hello")(scope, receive, send)


def test_a_version_answering_lifespan_with_a_response_is_served_as_not_speaking_it() -> None:
    app = router({"v1": asgi_version("v1"), "v2": hello})
    with TestClient(app, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "hello"


def test_a_version_sending_a_request_message_after_reading_startup_fails_to_start() -> None:
    async def confused(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    app = router({"v1": asgi_version("v1"), "v2": confused})
    with (
        pytest.raises(RuntimeError, match=r"version v2 failed to start.*http\.response\.start"),
        TestClient(app),
    ):
        pass

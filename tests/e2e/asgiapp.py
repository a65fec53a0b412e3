"""The router the ASGI end-to-end tests serve with real uvicorn and hypercorn (asyncio, trio).

``v1`` and ``v3`` are Starlette apps whose lifespans yield their own state; ``v2`` is a Flask
(WSGI) app. ``COHORTROUTE_FAIL_STARTUP=1`` makes ``v3``'s startup raise.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cohortroute import CohortRouter


def stateful(name: str, fail: bool = False) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if fail:
            raise RuntimeError(f"{name} cannot reach its database")
        yield {"version": name}

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} sees {request.state.version}")

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


flask_app = flask.Flask(__name__)
closed = [0]
together = threading.Barrier(6, timeout=10)


@flask_app.route("/")
def flask_home() -> str:
    return "v2 flask"


@flask_app.route("/together")
def flask_together() -> str:
    together.wait()  # six requests can only finish if they run at the same time
    return "together"


@flask_app.route("/closing")
def flask_closing() -> flask.Response:
    response = flask.make_response("closing")
    response.call_on_close(lambda: closed.__setitem__(0, closed[0] + 1))
    return response


@flask_app.route("/closed")
def flask_closed() -> str:
    return str(closed[0])


@flask_app.post("/upload")
def flask_upload() -> str:
    return f"{len(flask.request.get_data())} bytes"


app = CohortRouter(
    {
        "v1": stateful("v1"),
        "v2": flask_app,
        "v3": stateful("v3", fail=os.environ.get("COHORTROUTE_FAIL_STARTUP") == "1"),
    },
    domains=["example.com"],
    register_tenants=False,
)
app.store.pin("acme", "v2")
app.store.pin("globex", "v3")

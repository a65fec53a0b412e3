"""A small FastAPI app that uses what frameworks lean on the server for: lifespan state, bodies,
streaming, background tasks, websockets, root_path, cookies, errors.

``COHORTROUTE_CONFORMANCE=wrapped`` serves it as the default version of a CohortRouter, next to
another version (the nox session ``conformance`` runs the same tests both ways and compares the
counts).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel

from cohortroute import CohortRouter

DONE: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"db": {"items": {}}, "started": True}


fastapi_app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


def db(request: Request) -> dict[str, Any]:
    return request.state.db  # type: ignore[no-any-return]


Store = Annotated[dict[str, Any], Depends(db)]


@fastapi_app.get("/")
async def root(request: Request) -> dict[str, Any]:
    return {"started": request.state.started, "root_path": request.scope.get("root_path", "")}


@fastapi_app.put("/items/{item_id}")
async def put_item(item_id: int, item: Item, store: Store) -> Item:
    store["items"][item_id] = item
    return item


@fastapi_app.get("/items/{item_id}")
async def get_item(item_id: int, store: Store) -> Item:
    if item_id not in store["items"]:
        raise HTTPException(status_code=404, detail="no such item")
    return store["items"][item_id]  # type: ignore[no-any-return]


@fastapi_app.get("/sync")
def sync_view(q: str = "none") -> dict[str, str]:
    return {"q": q}


@fastapi_app.get("/stream")
async def stream() -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"part{i};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


@fastapi_app.post("/echo")
async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await request.body())


@fastapi_app.post("/later")
async def later(tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(DONE.append, "task")
    return {"queued": True}


@fastapi_app.get("/cookie")
async def cookie(request: Request) -> JSONResponse:
    response = JSONResponse({"seen": request.cookies.get("flavour")})
    response.set_cookie("flavour", "oat")
    return response


@fastapi_app.get("/old")
async def old() -> RedirectResponse:
    return RedirectResponse("/")


@fastapi_app.get("/boom")
async def boom() -> None:
    raise ValueError("boom")


@fastapi_app.exception_handler(ValueError)
async def on_value_error(request: Request, exc: ValueError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=418)


@fastapi_app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo {text} {websocket.state.started}")
    await websocket.close()


@contextlib.asynccontextmanager
async def other_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"db": {"items": {}}, "started": "the other version's state"}


app: Any = fastapi_app
if os.environ.get("COHORTROUTE_CONFORMANCE") == "wrapped":
    # Mounted next to another version with its own lifespan state, as in real use: the app
    # under test must see only its own.
    app = CohortRouter(
        {"v1": fastapi_app, "v2": FastAPI(lifespan=other_lifespan)},
        domains=["testserver"],
        register_tenants=False,
    )

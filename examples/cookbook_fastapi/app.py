"""FastAPI cookbook: two versions of one FastAPI service behind a cohortroute router.

Each version is its own FastAPI app with its own lifespan (what the lifespan yields is
``request.state`` in that version's requests only) and reads the tenant's decision through a
dependency. Serve it with uvicorn::

    export COHORTROUTE_STORE=sqlite:///cohortroute.db   # the router and the CLI share it
    uvicorn examples.cookbook_fastapi.app:app
    # in another terminal, with the same export:
    cohortroute pin acme 2026.12
    curl -H 'Host: acme.localhost:8000' http://127.0.0.1:8000/
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from cohortroute import CohortRouter, Decision


def decision(request: Request) -> Decision:
    """The router's decision for this request (``scope["cohortroute.decision"]``)."""
    found: Decision = request.scope["cohortroute.decision"]
    return found


CurrentDecision = Annotated[Decision, Depends(decision)]


def build(version: str, greeting: str) -> FastAPI:
    """One version of the service: its lifespan opens what the version needs, once."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # A real service opens its database pool here; each version gets its own.
        yield {"pool": f"pool of {version}"}

    service = FastAPI(lifespan=lifespan, title=f"shop {version}")

    @service.get("/")
    async def home(request: Request, current: CurrentDecision) -> dict[str, Any]:
        return {
            "version": version,
            "greeting": greeting,
            "tenant": current.tenant,
            "reason": current.reason.value,
            "pool": request.state.pool,
        }

    return service


app = CohortRouter(
    apps={"2026.11": build("2026.11", "hello"), "2026.12": build("2026.12", "welcome back")},
    default="2026.11",
    domains=["example.com", "localhost"],
    store=os.environ.get("COHORTROUTE_STORE", "sqlite:///cohortroute.db"),
)

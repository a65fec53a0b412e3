"""Routers with assignment backends that fail in every way, served by real gunicorn.

``failing``: a backend that raises, one that hangs past its timeout, one that names a version
no router mounts (for tenants whose name starts with ``typo``). ``visitors``: anonymous
visitors on ``localhost`` sampled half into v2 by cookie. ``/_status`` answers the router's
``status()`` as JSON (outside the router, so it needs no Host). ``asgi_assign``: an ASGI
router (for uvicorn) of two Starlette versions, each with its own lifespan state, taking signed
QA override tokens (key id ``e2e``, :data:`OVERRIDE_KEY`) and sampling visitors on
``localhost`` half into v2.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cohortroute import Assignment, CohortRouter, Query
from cohortroute.changes import set_visitor_sample
from tests.apps import wsgi_version

_never = threading.Event()


@dataclass(frozen=True)
class Raises:
    name: str = "raises"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        raise RuntimeError("the billing database is down")


@dataclass(frozen=True)
class Hangs:
    name: str = "hangs"
    ttl: float | None = None
    timeout: float | None = 0.1

    def assign(self, query: Query, /) -> Assignment | None:
        _never.wait(3)  # far past its timeout
        return Assignment("v2")


@dataclass(frozen=True)
class Typo:
    name: str = "typo"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return Assignment("v9", "typo") if query.tenant.startswith("typo") else None


def _with_status(router: CohortRouter) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_status":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(router.status()).encode()]
        return router(environ, start_response)  # type: ignore[no-any-return]

    return app


_failing = CohortRouter(
    {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
    domains=["example.com"],
    assign=[Raises(), Hangs(), Typo()],
    register_tenants=False,
)
failing = _with_status(_failing)

_visitors = CohortRouter(
    {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
    domains=["localhost"],
    visitor_key="e2e-visitor-secret-0123456789",
    register_tenants=False,
)
_visitors.store.write(
    set_visitor_sample("v2", 50, salt="e2e")
)  # each worker has its own memory store
_visitors.store.pin("acme", "v1")
visitors = _with_status(_visitors)


OVERRIDE_KEY = "e2e-override-secret-0123456789"


def _starlette(name: str) -> Starlette:
    """A version answering ``<name> sees <its lifespan state's version> <reason>``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"version": name}

    async def home(request: Request) -> PlainTextResponse:
        decision = request.scope["cohortroute.decision"]
        return PlainTextResponse(f"{name} sees {request.state.version} {decision.reason}")

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


asgi_assign = CohortRouter(
    {"v1": _starlette("v1"), "v2": _starlette("v2")},
    domains=["localhost"],
    override_keys={"e2e": OVERRIDE_KEY},
    visitor_key="e2e-visitor-secret-0123456789",
    register_tenants=False,
)
asgi_assign.store.write(set_visitor_sample("v2", 50, salt="e2e"))

"""``force_version`` and the ``cohort`` fixture accept the app a user actually has.

The quick start wraps the router, ``app = ProxyFix(app, x_host=1)``; a test then forcing
``force_version(app, "2026.12")`` stopped with ``AttributeError: 'ProxyFix' object has no
attribute '_overrides'``. Middleware that keeps the wrapped app (``.app``, ``.application``,
``.wsgi_app``) is now followed to the router, and anything else is a ``TypeError`` that says
what to pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from starlette.middleware.gzip import GZipMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.testing import CohortOverrides, force_version, router_of


def _version(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]

    return app


@pytest.fixture
def router() -> Iterator[CohortRouter]:
    app = CohortRouter(
        apps={"2026.11": _version("2026.11"), "2026.12": _version("2026.12")},
        default="2026.11",
        domains=["example.com"],
        store="memory://",
    )
    yield app
    app.close()


def _served(app: Any, tenant: str = "acme") -> str:
    text: str = Client(app).get("/", headers={"Host": f"{tenant}.example.com"}).text
    return text


def test_force_version_follows_proxyfix_to_the_router(router: CohortRouter) -> None:
    app = ProxyFix(router, x_host=1)
    with force_version(app, "2026.12"):
        assert _served(app) == "2026.12"
    assert _served(app) == "2026.11"


def test_the_cohort_fixture_follows_nested_middleware(router: CohortRouter) -> None:
    class Outer:  # keeps what it wraps as .application, as WhiteNoise does
        def __init__(self, application: Any) -> None:
            self.application = application

    app = Outer(ProxyFix(router))
    overrides = CohortOverrides()
    overrides.force(app, "2026.12", tenant="acme")
    assert (_served(router), _served(router, "globex")) == ("2026.12", "2026.11")
    overrides.reset()
    assert _served(router) == "2026.11"


def test_asgi_middleware_is_followed_too() -> None:
    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("not called")

    router = CohortRouter(
        apps={"old": _version("old"), "new": asgi_app},
        default="old",
        domains=["example.com"],
        store="memory://",
    )
    try:
        assert router_of(GZipMiddleware(router)) is router
    finally:
        router.close()


def test_anything_else_says_to_pass_the_router() -> None:
    with pytest.raises(TypeError, match="Pass the router itself"):
        CohortOverrides().force(_version("x"), "2026.12")
    with (
        pytest.raises(TypeError, match="Pass the router itself"),
        force_version(ProxyFix(_version("x")), "v"),
    ):
        pass

"""Upstream forwarding, found by trying it as a user: no cookie jar shared between clients, and
duplicated forwarding headers merged before the router's hop is appended."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream
from cohortroute.upstream.headers import request_headers
from tests.apps import asgi_version, wsgi_version
from tests.test_upstream_asgi import call, http_scope, lifespan
from tests.upstream_helpers import read_body, respond, serving


async def cookie_build(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/login`` sets a session cookie; anything else echoes the request's headers."""
    await read_body(receive)
    if scope["path"] == "/login":
        await respond(send, b"ok", [(b"set-cookie", b"session=alice-secret; Path=/")])
        return
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    await respond(send, json.dumps(headers).encode())


@pytest.fixture
def build() -> Iterator[str]:
    with serving(cookie_build) as url:
        yield url


def _cookies(body: bytes) -> list[str]:
    return [value for name, value in json.loads(body) if name == "cookie"]


def test_a_cookie_set_for_one_client_is_not_sent_for_the_next_under_wsgi(build: str) -> None:
    upstream = Upstream(build)
    router = CohortRouter(
        apps={"v1": wsgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")
    try:
        client = Client(router)
        login = client.get("/login", headers={"Host": "acme.example.com"})
        assert login.headers["Set-Cookie"].startswith("session=alice-secret")
        # Another client (a fresh werkzeug Client: no cookies of its own).
        other = Client(router).get("/page", headers={"Host": "acme.example.com"})
        assert _cookies(other.data) == []
        mine = Client(router, use_cookies=False).get(
            "/page", headers={"Host": "acme.example.com", "Cookie": "session=bob"}
        )
        assert _cookies(mine.data) == ["session=bob"]
    finally:
        router.close()
        upstream.close()


def test_a_cookie_set_for_one_client_is_not_sent_for_the_next_under_asgi(build: str) -> None:
    upstream = Upstream(build)
    router = CohortRouter(
        apps={"v1": asgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")

    async def inside() -> tuple[int, bytes]:
        status, _ = await call(router, http_scope("/login"))
        assert status == 200
        return await call(router, http_scope("/page"))

    try:
        status, body = asyncio.run(lifespan(router, inside))
        assert status == 200
        assert _cookies(body) == []
    finally:
        router.close()
        upstream.close()


def test_duplicated_forwarding_headers_are_merged_and_the_hop_comes_last() -> None:
    headers = request_headers(
        [
            (b"host", b"acme.example.com"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"forwarded", b"for=1.2.3.4"),
            (b"forwarded", b"for=6.6.6.6"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-proto", b"http"),
        ],
        client="10.0.0.9",
        scheme="http",
        host=b"acme.example.com",
        decision=None,
        upstream_host=None,
    )
    xff = [value for name, value in headers if name == b"x-forwarded-for"]
    assert xff == [b"1.2.3.4, 6.6.6.6, 10.0.0.9"]
    forwarded = [value for name, value in headers if name == b"forwarded"]
    assert forwarded == [
        b'for=1.2.3.4, for=6.6.6.6, for=10.0.0.9;proto=http;host="acme.example.com"'
    ]
    proto = [value for name, value in headers if name == b"x-forwarded-proto"]
    assert proto == [b"https, http, http"]

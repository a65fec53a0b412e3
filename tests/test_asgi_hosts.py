"""The Host of an ASGI request: exactly one ``host`` header, and HTTP/1.0 without one."""

from __future__ import annotations

from typing import Any

import pytest

from .apps import asgi_version, wsgi_version
from .test_router_asgi import http_scope, make, request


def with_headers(headers: list[tuple[bytes, bytes]], http_version: str = "1.1") -> Any:
    scope = http_scope(None, http_version=http_version)
    scope["headers"] = headers
    return scope


@pytest.mark.parametrize(
    "hosts",
    [
        [b"acme.example.com", b"globex.example.com"],
        [b"acme.example.com", b"acme.example.com"],
        [b"acme.example.com", b"evil.com"],
    ],
)
def test_several_host_headers_are_400(hosts: list[bytes]) -> None:
    router = make({"v1": asgi_version("v1"), "v2": wsgi_version("v2")})
    router.store.pin("acme", "v2")
    request(router, "acme.example.com")  # warm the cache for the first Host
    headers = [(b"host", host) for host in hosts] + [(b"accept", b"*/*")]
    status, body = request(router, None, scope=with_headers(headers))
    assert status == 400 and "several Host headers" in body


@pytest.mark.parametrize("http_version", ["1.0", "1"])
def test_an_empty_host_on_http_10_is_no_host_and_gets_the_default(http_version: str) -> None:
    # granian sends (b"host", b"") and http_version "1" for an HTTP/1.0 request without Host.
    scope = with_headers([(b"host", b"")], http_version)
    assert request(make(), None, scope=scope) == (200, "v1 None no-tenant |/")


def test_no_host_on_http_10_gets_the_default() -> None:
    assert request(make(), None, http_version="1.0") == (200, "v1 None no-tenant |/")


@pytest.mark.parametrize("http_version", ["1.1", "2"])
def test_an_empty_or_missing_host_on_http_11_is_400(http_version: str) -> None:
    assert request(make(), None, scope=with_headers([(b"host", b"")], http_version))[0] == 400
    assert request(make(), None, scope=with_headers([], http_version))[0] == 400

"""An HTTP/1.0 request without Host is routed by the server's own address (the default, reason
``no-tenant``), also when the server listens on IPv6 (``uvicorn --host ::1``, gunicorn
``-b [::1]:8000``): its bare address ``::1`` was read as a host with port ``:1`` and got 400;
and on a Unix socket (gunicorn ``-b unix:/run/app.sock`` gives its path as ``SERVER_NAME``,
``uvicorn --uds`` as ``scope["server"] == (path, None)``), whose path got 400 too."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cohortroute import CohortRouter, Reason

from .apps import asgi_version


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    decision = environ["cohortroute.decision"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{decision.version} {decision.reason.value}".encode()]


@pytest.mark.parametrize(
    "server", ["::1", "fe80::1%eth0", "2001:db8::7", "/run/app.sock", "@abstract"]
)
def test_wsgi_http10_without_host_on_an_ipv6_server_gets_the_default(server: str) -> None:
    router = CohortRouter(
        {"v1": wsgi_app, "v2": wsgi_app}, domains=["example.com"], register_tenants=False
    )
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "SERVER_NAME": server,
        "SERVER_PORT": "8000",
        "wsgi.url_scheme": "http",
    }
    body = b"".join(router(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    router.close()
    assert statuses == ["200 OK"], body
    assert body == b"v1 no-tenant"


@pytest.mark.parametrize("server", ["::1", "fe80::1%eth0", "/run/app.sock"])
def test_asgi_http10_without_host_on_an_ipv6_server_gets_the_default(server: str) -> None:
    router = CohortRouter(
        {"v1": asgi_version("v1"), "v2": asgi_version("v2")},
        domains=["example.com"],
        register_tenants=False,
    )
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.0",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("::1", 40000),
        "server": (server, None if "/" in server else 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(router, scope, receive, send)
    router.close()
    assert sent[0]["status"] == 200, sent
    assert scope["cohortroute.decision"].reason is Reason.NO_TENANT


def test_wsgi_http10_with_an_empty_host_gets_the_default_as_under_asgi() -> None:
    """gunicorn passes ``Host:`` with no value as ``HTTP_HOST == ""``: on HTTP/1.0 that is routed
    by the server's name like a missing Host (the ASGI router did; the WSGI one answered 400)."""
    router = CohortRouter(
        {"v1": wsgi_app, "v2": wsgi_app}, domains=["example.com"], register_tenants=False
    )
    statuses: list[str] = []

    def call(protocol: str) -> bytes:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "SERVER_PROTOCOL": protocol,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "",
            "wsgi.url_scheme": "http",
        }
        start = lambda status, headers, exc_info=None: statuses.append(status)  # noqa: E731
        return b"".join(router(environ, start))

    assert call("HTTP/1.0") == b"v1 no-tenant"
    call("HTTP/1.1")  # an empty Host on HTTP/1.1 stays a 400 (RFC 9112)
    router.close()
    assert statuses == ["200 OK", "400 Bad Request"]

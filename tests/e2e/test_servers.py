"""The router under real gunicorn (WSGI) and real uvicorn (ASGI), on 127.0.0.1."""

from __future__ import annotations

import pytest

from .servers import bin_path, free_port, get, serve

pytestmark = pytest.mark.e2e


def test_gunicorn_serves_the_wsgi_router() -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = [bin_path("gunicorn"), "-w", "2", "-b", address, "tests.e2e.serverapp:wsgi"]
    with serve(command, port):
        assert get(port, "acme.example.com", "/orders/1") == (200, "v2 acme pin |/orders/1")
        assert get(port, "globex.example.com:8000") == (200, "v1 globex default |/")
        assert get(port, "example.com") == (200, "v1 None no-tenant |/")
        status, body = get(port, "evil.com")
        assert status == 400 and "not under any domain" in body


def test_uvicorn_serves_the_asgi_router_with_lifespan() -> None:
    port = free_port()
    command = [
        bin_path("uvicorn"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "tests.e2e.serverapp:asgi",
    ]
    with serve(command, port) as process:
        assert get(port, "acme.example.com") == (200, "v2 acme pin |/")  # a WSGI version
        assert get(port, "globex.example.com") == (200, "v3 globex pin |/")
        assert get(port, "initech.example.com") == (200, "v1 initech default |/")
        status, body = get(port, "acme.example.com:99999")
        assert status == 400 and "invalid port" in body
    assert process.returncode in (0, -15)

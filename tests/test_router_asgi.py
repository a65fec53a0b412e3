"""CohortRouter under ASGI, in process with asgiref's ApplicationCommunicator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cohortroute import ASGICohortRouter, CohortRouter

from .apps import asgi_version, communicator, wsgi_version


def make(apps: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    apps = apps or {"v1": asgi_version("v1"), "v2": wsgi_version("v2")}
    return CohortRouter(apps, domains=["example.com"], **kwargs)


def http_scope(host: str | None, path: str = "/", http_version: str = "1.1") -> dict[str, Any]:
    headers = [(b"accept", b"*/*")]
    if host is not None:
        headers.insert(0, (b"host", host.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


def request(
    router: Any, host: str | None, path: str = "/", scope: dict[str, Any] | None = None, **kw: Any
) -> tuple[int, str]:
    async def run() -> tuple[int, str]:
        comm = communicator(router, scope if scope is not None else http_scope(host, path, **kw))
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await comm.receive_output(2)
        body = b""
        while True:
            message = await comm.receive_output(2)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await comm.wait(1)
        return start["status"], body.decode()

    return asyncio.run(run())


def test_any_asgi_version_makes_an_asgi_router() -> None:
    assert isinstance(make(), ASGICohortRouter)
    assert isinstance(make({"v1": wsgi_version("v1")}, interface="asgi"), ASGICohortRouter)


def test_asgi_and_wsgi_versions_both_see_the_decision() -> None:
    router = make()
    assert request(router, "acme.example.com") == (200, "v1 acme default |/")
    router.store.pin("acme", "v2")
    assert request(router, "acme.example.com:8000", "/a/b") == (200, "v2 acme pin |/a/b")


def test_bad_host_is_400_under_asgi() -> None:
    status, body = request(make(), "evil.com")
    assert status == 400 and body.startswith("400 Bad Request")
    assert request(make(), None)[0] == 400
    assert request(make(), None, http_version="1.0")[0] == 200  # falls back to the server name


def test_websockets_route_by_host() -> None:
    router = make({"v1": asgi_version("v1"), "v2": asgi_version("v2")})
    router.store.pin("acme", "v2")

    async def run(host: str) -> list[dict[str, Any]]:
        scope = dict(http_scope(host), type="websocket", scheme="ws")
        comm = communicator(router, scope)
        await comm.send_input({"type": "websocket.connect"})
        out = [await comm.receive_output(2)]
        while out[-1]["type"] != "websocket.close":
            out.append(await comm.receive_output(2))
        await comm.wait(1)
        return out

    messages = asyncio.run(run("acme.example.com"))
    assert messages[1] == {"type": "websocket.send", "text": "v2 acme"}
    rejected = asyncio.run(run("evil.com"))
    assert rejected[0]["type"] == "websocket.close" and rejected[0]["code"] == 1008


def test_websocket_to_a_wsgi_version_is_closed_not_crashed() -> None:
    router = make()
    router.store.pin("acme", "v2")  # v2 is WSGI here

    async def run() -> dict[str, Any]:
        scope = dict(http_scope("acme.example.com"), type="websocket", scheme="ws")
        comm = communicator(router, scope)
        await comm.send_input({"type": "websocket.connect"})
        message = await comm.receive_output(2)
        await comm.wait(1)
        return message

    assert asyncio.run(run())["type"] == "websocket.close"


def lifespan(router: Any, expect_startup_ok: bool = True) -> list[dict[str, Any]]:
    """The router's answers to startup and shutdown; after a ``.failed`` answer the router
    must raise, as a bare app does (test clients rely on it)."""

    async def run() -> list[dict[str, Any]]:
        comm = communicator(router, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}})
        await comm.send_input({"type": "lifespan.startup"})
        out = [await comm.receive_output(2)]
        if out[0]["type"] == "lifespan.startup.complete":
            await comm.send_input({"type": "lifespan.shutdown"})
            out.append(await comm.receive_output(2))
        if out[-1]["type"].endswith(".failed"):
            with pytest.raises(Exception, match="failed to"):
                await comm.wait(2)
        else:
            await comm.wait(2)
        return out

    return asyncio.run(run())


def test_lifespan_reaches_every_asgi_version_in_order_and_never_wsgi() -> None:
    events: list[str] = []
    router = make(
        {"a": asgi_version("a", events), "w": wsgi_version("w"), "b": asgi_version("b", events)}
    )
    out = lifespan(router)
    assert [m["type"] for m in out] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["a:startup", "b:startup", "b:shutdown", "a:shutdown"]


def test_failed_startup_shuts_down_started_versions_in_reverse() -> None:
    events: list[str] = []
    router = make(
        {
            "a": asgi_version("a", events),
            "b": asgi_version("b", events),
            "c": asgi_version("c", events, fail_startup=True),
            "d": asgi_version("d", events),
        }
    )
    out = lifespan(router)
    assert out[0]["type"] == "lifespan.startup.failed"
    assert "version c failed to start: boom" in out[0]["message"]
    assert events == ["a:startup", "b:startup", "c:startup", "b:shutdown", "a:shutdown"]


def test_a_version_without_lifespan_support_is_skipped() -> None:
    events: list[str] = []

    async def no_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("lifespan not supported")

    router = make({"a": asgi_version("a", events), "old": no_lifespan})
    out = lifespan(router)
    assert [m["type"] for m in out] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["a:startup", "a:shutdown"]


@pytest.mark.parametrize("host", ["acme.example.com", "x.example.com"])
def test_explain_matches_asgi_requests(host: str) -> None:
    router = make()
    router.store.start_rollout("v2", 50)
    tenant = host.split(".")[0]
    decision = router.explain(tenant)
    status, body = request(router, host)
    assert status == 200
    assert body.startswith(f"{decision.version} {tenant} {decision.reason}")

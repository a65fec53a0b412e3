"""Upstream when the build cannot be reached, and addresses that are refused at start-up: the
client's 502/504 names the version only (no address), the operator's log names the redacted
address and the cause (refused, no socket file, unknown host, timeout); the ASGI path runs under
asyncio and trio alike. Builds are real uvicorn servers in threads."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from cohortroute import CohortRouter
from cohortroute.errors import ConfigurationError
from cohortroute.upstream import Upstream
from tests.apps import asgi_version, wsgi_version
from tests.e2e.servers import free_port
from tests.upstream_helpers import echo_build, serving

LOOPS = ["asyncio", "trio"]


def make(upstream: Upstream, *, asgi: bool) -> Any:
    router = CohortRouter(
        apps={"v1": asgi_version("v1") if asgi else wsgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
        interface="asgi" if asgi else "wsgi",
    )
    router.store.pin("acme", "v2")
    return router


def http_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"acme.example.com")],
        "client": ("10.0.0.9", 5000),
        "server": ("127.0.0.1", 8000),
    }


def asgi_get(router: Any, upstream: Upstream, event_loop: str) -> tuple[int, bytes]:
    """One GET through the ASGI ``router`` on a fresh ``event_loop`` (asyncio or trio); the
    upstream's pool of that loop is closed before the loop ends."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await router(http_scope(), receive, send)
        await upstream.asgi().aclose()

    anyio.run(run, backend=event_loop)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def wsgi_get(router: Any) -> tuple[int, bytes]:
    client = httpx.Client(transport=httpx.WSGITransport(app=router), base_url="http://x")
    response = client.get("/p", headers={"Host": "acme.example.com"})
    return response.status_code, response.content


# --- addresses refused at start-up ---------------------------------------------------------------


def test_an_address_with_a_user_and_password_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Upstream("http://admin:hunter2@127.0.0.1:18019")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "no user or password" in message
    assert "unix socket" in message


@pytest.mark.parametrize("port", ["99999", "0", "65536", "http"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    with pytest.raises(ConfigurationError, match="port must be a number from 1 to 65535"):
        Upstream(f"http://127.0.0.1:{port}")


def test_ports_in_range_and_default_ports_are_accepted() -> None:
    for url in ("http://127.0.0.1:1", "http://127.0.0.1:65535", "https://build.internal"):
        assert Upstream(url).url == url


# --- HTTP through the ASGI router, asyncio and trio -------------------------------------------


@pytest.mark.parametrize("event_loop", LOOPS)
def test_http_is_forwarded_under_both_event_loops(event_loop: str) -> None:
    with serving(echo_build("v2")) as url:
        upstream = Upstream(url)
        router = make(upstream, asgi=True)
        first = asgi_get(router, upstream, event_loop)
        second = asgi_get(router, upstream, event_loop)  # a new loop, a new pool
        router.close()
    assert first[0] == second[0] == 200
    assert b'"build": "v2"' in first[1]


# --- a build that is down: the client's body, the operator's log ------------------------------


def down(kind: str, tmp_path: Path) -> tuple[str, str]:
    """(address of a build that is down in the way ``kind`` says, what the log must say)."""
    if kind == "refused":
        return f"http://127.0.0.1:{free_port()}", "refused the connection"
    if kind == "no socket":
        return f"unix:{tmp_path}/gone.sock", "has no socket file there"
    return "http://no-such-build.invalid:8080", "has a host name that does not resolve"


def check_logged_not_told(
    status: int, body: bytes, address: str, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert status == 502
    text = body.decode()
    assert text == (
        "502 Bad Gateway: version v2 is unavailable (its server could not be reached); "
        "the operator's log has the details.\n"
    )
    hidden = address.split("//")[-1].split(":")[0] if "//" in address else address[5:]
    assert hidden not in text
    logged = [r.getMessage() for r in caplog.records if r.name == "cohortroute.upstream.errors"]
    assert len(logged) == 1
    assert address in logged[0] and what in logged[0]


@pytest.mark.parametrize("kind", ["refused", "no socket", "unknown host"])
@pytest.mark.parametrize("event_loop", LOOPS)
def test_a_down_build_is_a_502_naming_the_version_only_under_asgi(
    kind: str, event_loop: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    address, what = down(kind, tmp_path)
    upstream = Upstream(address)
    router = make(upstream, asgi=True)
    with caplog.at_level(logging.WARNING):
        status, body = asgi_get(router, upstream, event_loop)
    router.close()
    check_logged_not_told(status, body, address, what, caplog)


@pytest.mark.parametrize("kind", ["refused", "no socket", "unknown host"])
def test_a_down_build_is_a_502_naming_the_version_only_under_wsgi(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    address, what = down(kind, tmp_path)
    router = make(Upstream(address), asgi=False)
    with caplog.at_level(logging.WARNING):
        status, body = wsgi_get(router)
    router.close()
    check_logged_not_told(status, body, address, what, caplog)


@pytest.mark.parametrize("event_loop", LOOPS)
def test_a_build_too_slow_to_answer_is_a_504_saying_so_in_the_log(
    event_loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    answered = threading.Event()

    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await anyio.to_thread.run_sync(answered.wait, 10)

    with serving(silent) as url:
        upstream = Upstream(url, read_timeout=0.2)
        router = make(upstream, asgi=True)
        with caplog.at_level(logging.WARNING):
            status, body = asgi_get(router, upstream, event_loop)
        answered.set()
        router.close()
    assert status == 504
    assert body.decode().startswith("504 Gateway Timeout: version v2 is unavailable")
    assert url.split("//")[1] not in body.decode()
    assert any("did not answer in time" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("event_loop", LOOPS)
def test_an_unexpected_error_while_connecting_is_a_502_logged_with_its_traceback(
    event_loop: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("port must be 0-65535.")

    monkeypatch.setattr(httpx.AsyncClient, "send", broken)
    upstream = Upstream(f"http://127.0.0.1:{free_port()}")
    router = make(upstream, asgi=True)
    with caplog.at_level(logging.WARNING):
        status, body = asgi_get(router, upstream, event_loop)
    router.close()
    assert status == 502
    assert body.decode().startswith("502 Bad Gateway: version v2 is unavailable")
    records = [r for r in caplog.records if r.name == "cohortroute.upstream.errors"]
    assert len(records) == 1
    assert records[0].exc_info is not None and records[0].exc_info[0] is OverflowError


# --- websockets to a build that is down ---------------------------------------------------------


def test_a_websocket_to_a_down_build_is_a_502_when_the_server_offers_http_responses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    router = make(Upstream(address), asgi=True)
    with serving(router) as url, caplog.at_level(logging.WARNING):
        port = url.rsplit(":", 1)[1]
        with pytest.raises(InvalidStatus) as caught:
            websockets.sync.client.connect(
                "ws://acme.example.com/ws",
                sock=socket.create_connection(("127.0.0.1", int(port))),
                open_timeout=5,
            )
    router.close()
    response = caught.value.response
    assert response.status_code == 502
    assert response.body.decode().startswith("502 Bad Gateway: version v2 is unavailable")
    assert address.split("//")[1] not in response.body.decode()
    logged = [r.getMessage() for r in caplog.records if "websocket to upstream" in r.getMessage()]
    assert len(logged) == 1 and "refused the connection" in logged[0]


# --- a WSGI router served by an ASGI server ------------------------------------------------------


def test_a_wsgi_router_served_by_uvicorn_says_to_pass_interface_asgi(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = CohortRouter(
        apps={"v1": Upstream(f"http://127.0.0.1:{free_port()}")},
        domains=["example.com"],
        register_tenants=False,
    )
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's loggers do not propagate
    with serving(router) as url:  # (and uvicorn sets their handlers when it starts)
        uvicorn_log.addHandler(caplog.handler)
        try:
            response = httpx.get(url + "/p", headers={"Host": "acme.example.com"}, timeout=5)
        finally:
            uvicorn_log.removeHandler(caplog.handler)
    router.close()
    assert response.status_code == 500
    errors = [r for r in caplog.records if r.exc_info is not None]
    assert errors, "uvicorn logs the application's exception"
    assert "create it with interface='asgi'" in str(errors[-1].exc_info[1])  # type: ignore[index]


# --- websockets under asyncio and trio ---------------------------------------------------------


async def closing_build(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes each message with the tenant the router named; "bye" closes with code 4001."""
    await receive()
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
    tenant = dict(scope["headers"])[b"x-cohortroute-tenant"].decode()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4001})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": f"{tenant}: {message['text']}"})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


def ws_talk(router: Any, upstream: Upstream, event_loop: str, said: list[Any]) -> list[Any]:
    """Open a websocket through ``router`` on ``event_loop``, say each of ``said`` (text or
    bytes) and collect what comes back: the accept (or refusal), then one message per piece
    said; the last piece said is answered by a close when it is "bye"."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"acme.example.com")],
        "subprotocols": ["chat"],
        "client": ("10.0.0.9", 5000),
    }
    seen: list[Any] = []

    async def run() -> None:
        to_app, app_in = anyio.create_memory_object_stream[dict[str, Any]](10)
        app_out, from_app = anyio.create_memory_object_stream[dict[str, Any]](10)
        async with to_app, app_in, app_out, from_app, anyio.create_task_group() as group:
            group.start_soon(router, scope, app_in.receive, app_out.send)
            await to_app.send({"type": "websocket.connect"})
            with anyio.fail_after(5):
                seen.append(await from_app.receive())
                if seen[0]["type"] == "websocket.accept":
                    for piece in said:
                        key = "text" if isinstance(piece, str) else "bytes"
                        await to_app.send({"type": "websocket.receive", key: piece})
                        seen.append(await from_app.receive())
                    if seen[-1]["type"] != "websocket.close":
                        await to_app.send({"type": "websocket.disconnect", "code": 1000})
        await upstream.asgi().aclose()

    anyio.run(run, backend=event_loop)
    return seen


@pytest.mark.parametrize("event_loop", LOOPS)
@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_websockets_are_relayed_both_ways_under_both_event_loops(
    event_loop: str, over: str, tmp_path: Path
) -> None:
    unix = str(tmp_path / "ws.sock") if over == "unix" else None
    with serving(closing_build, unix_path=unix) as url:
        upstream = Upstream(url)
        router = make(upstream, asgi=True)
        seen = ws_talk(router, upstream, event_loop, ["hello", b"\x00\x01" * 40_000, "bye"])
        router.close()
    assert (seen[0]["type"], seen[0]["subprotocol"]) == ("websocket.accept", "chat")
    assert seen[1] == {"type": "websocket.send", "text": "acme: hello"}
    assert seen[2] == {"type": "websocket.send", "bytes": b"\x01\x00" * 40_000}
    assert seen[3] == {"type": "websocket.close", "code": 4001}  # the build's code, passed on


@pytest.mark.parametrize("event_loop", LOOPS)
def test_a_websocket_to_a_down_build_is_closed_with_1014_without_the_extension(
    event_loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = Upstream(f"http://127.0.0.1:{free_port()}")
    router = make(upstream, asgi=True)
    with caplog.at_level(logging.WARNING):
        seen = ws_talk(router, upstream, event_loop, [])
    router.close()
    assert seen == [{"type": "websocket.close", "code": 1014}]
    assert "refused the connection" in caplog.text


async def refusing_build(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Closes every websocket before accepting it (uvicorn answers the handshake with 403)."""
    await receive()
    await send({"type": "websocket.close", "code": 1000})


@pytest.mark.parametrize("event_loop", LOOPS)
def test_a_websocket_the_build_refuses_is_closed_with_1014_and_logged_as_refused(
    event_loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(refusing_build) as url:
        upstream = Upstream(url)
        router = make(upstream, asgi=True)
        with caplog.at_level(logging.WARNING):
            seen = ws_talk(router, upstream, event_loop, [])
        router.close()
    assert seen == [{"type": "websocket.close", "code": 1014}]
    assert "refused the websocket handshake (server rejected WebSocket connection: HTTP 403)" in (
        caplog.text
    )


def test_closing_from_another_thread_closes_a_trio_loops_pool_on_that_loop() -> None:
    with serving(echo_build("v2")) as url:
        upstream = Upstream(url)
        router = make(upstream, asgi=True)
        closed: list[bool] = []

        async def run() -> None:
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await router(http_scope(), receive, send)
            client = upstream.asgi().client()
            await anyio.to_thread.run_sync(router.close)  # as a server's other thread would
            for _ in range(1000):  # checkpoints, not sleeps: the loop runs the closing task
                if client.is_closed:
                    break
                await anyio.sleep(0)
            closed.append(client.is_closed)
            assert sent[0]["status"] == 200

        anyio.run(run, backend="trio")
    assert closed == [True]
    assert len(upstream.asgi()._clients) == 0

"""WSGI versions under the ASGI router keep PEP 3333 whole: concurrency on worker threads,
``close()``, ``write()``, chunked and streamed request bodies, streamed responses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import flask
import httpx
import pytest

from cohortroute import CohortRouter

from .apps import asgi_version, communicator
from .test_router_asgi import http_scope

WAIT = 5  # seconds a thread waits for the others before the test fails (never reached when green)


def router(wsgi_app: Any) -> Any:
    return CohortRouter(
        {"asgi": asgi_version("asgi"), "old": wsgi_app},
        default="old",
        domains=["example.com"],
        register_tenants=False,
    )


async def get_all(app: Any, paths: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.example.com") as c:

        async def one(path: str) -> None:
            responses.append(await c.get(path))

        async with anyio.create_task_group() as group:
            for path in paths:
                group.start_soon(one, path)
    return responses


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_wsgi_requests_run_concurrently(backend: str) -> None:
    # Six requests that can only finish together: one thread at a time would break the barrier.
    barrier = threading.Barrier(6, timeout=WAIT)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        barrier.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(threading.get_ident()).encode()]

    responses = anyio.run(get_all, router(app), [f"/{i}" for i in range(6)], backend=backend)
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.text for r in responses}) == 6


def test_close_is_called_on_every_response_iterable() -> None:
    closed: list[str] = []
    app = flask.Flask(__name__)

    @app.route("/<name>")
    def page(name: str) -> flask.Response:
        response = flask.make_response(name)
        response.call_on_close(lambda: closed.append(name))
        return response

    responses = anyio.run(get_all, router(app), [f"/r{i}" for i in range(5)])
    assert sorted(r.text for r in responses) == [f"r{i}" for i in range(5)]
    assert sorted(closed) == [f"r{i}" for i in range(5)]


def test_close_is_called_when_iteration_fails() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"part"
            raise RuntimeError("disk gone")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    async def run() -> None:
        transport = httpx.ASGITransport(app=router(app))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://acme.example.com/")

    with pytest.raises(RuntimeError, match="disk gone"):
        anyio.run(run)
    assert closed == [True]


def test_write_callable_works() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then returned"]

    (response,) = anyio.run(get_all, router(app), ["/"])
    assert (response.status_code, response.text) == (200, "written then returned")


def test_exc_info_before_the_headers_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise ValueError("late")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"sorry"]

    (response,) = anyio.run(get_all, router(app), ["/"])
    assert (response.status_code, response.text) == (500, "sorry")


def converse(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes]:
    """Send the body in ``chunks`` (as a chunked upload arrives) and collect the response."""

    async def run() -> tuple[int, bytes]:
        comm = communicator(app, scope)
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await comm.send_input({"type": "http.request", "body": chunk, "more_body": more})
        start = await comm.receive_output(WAIT)
        body = b""
        while True:
            message = await comm.receive_output(WAIT)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await comm.wait(WAIT)
        return start["status"], body

    return anyio.run(run)


def test_a_chunked_request_body_reaches_flask_whole() -> None:
    app = flask.Flask(__name__)

    @app.post("/upload")
    def upload() -> str:
        return f"{len(flask.request.get_data())} {flask.request.form.get('a')}"

    scope = dict(http_scope("acme.example.com", "/upload"), method="POST")
    scope["headers"] = [
        (b"host", b"acme.example.com"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"transfer-encoding", b"chunked"),
    ]
    assert converse(router(app), scope, [b"a=he", b"llo", b"&b=2"]) == (200, b"11 hello")


def test_the_request_body_is_streamed_not_buffered() -> None:
    first_read = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        head = stream.read(4)
        first_read.set()
        rest = stream.read()
        start_response("200 OK", [])
        return [head + b"|" + rest]

    async def run() -> bytes:
        comm = communicator(router(app), dict(http_scope("acme.example.com"), method="POST"))
        await comm.send_input({"type": "http.request", "body": b"head", "more_body": True})
        # The app reads the first chunk while the rest has not been sent yet.
        await anyio.to_thread.run_sync(first_read.wait, WAIT)
        assert first_read.is_set()
        await comm.send_input({"type": "http.request", "body": b"tail", "more_body": False})
        await comm.receive_output(WAIT)
        body = await comm.receive_output(WAIT)
        await comm.wait(WAIT)
        return bytes(body["body"])

    assert anyio.run(run) == b"head|tail"


def test_the_response_is_streamed_chunk_by_chunk() -> None:
    go_on = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        go_on.wait(WAIT)  # the first chunk must be out before the second is made
        yield b"second"

    async def run() -> list[bytes]:
        comm = communicator(router(app), http_scope("acme.example.com"))
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        assert (await comm.receive_output(WAIT))["status"] == 200
        first = await comm.receive_output(WAIT)
        go_on.set()
        chunks = [first["body"]]
        while True:
            message = await comm.receive_output(WAIT)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await comm.wait(WAIT)
        return chunks

    chunks = anyio.run(run)
    assert chunks[0] == b"first" and b"".join(chunks) == b"firstsecond"


def test_content_length_ends_the_body_and_the_environ_is_pep_3333() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok", b"ignored past Content-Length"]

    scope = http_scope("acme.example.com", "/a/b")
    scope["query_string"] = b"x=1"
    scope["headers"] += [(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x_forwarded_for", b"1.2.3.4")]
    assert converse(router(app), scope, [b""]) == (200, b"ok")
    assert seen["wsgi.input_terminated"] is True
    assert seen["wsgi.multithread"] is True
    assert (seen["PATH_INFO"], seen["QUERY_STRING"]) == ("/a/b", "x=1")
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_FORWARDED_FOR" not in seen  # an underscore header never poses as a dash one
    assert seen["cohortroute.decision"].version == "old"


def test_a_websocket_to_a_wsgi_version_is_closed() -> None:
    async def run() -> dict[str, Any]:
        scope = dict(http_scope("acme.example.com"), type="websocket")
        comm = communicator(router(lambda e, s: []), scope)
        await comm.send_input({"type": "websocket.connect"})
        message = await comm.receive_output(WAIT)
        await comm.wait(WAIT)
        return message

    assert anyio.run(run) == {"type": "websocket.close", "code": 1003}

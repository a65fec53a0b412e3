"""The ASGI router under an HTTP/2 server (hypercorn): a request body with no Content-Length
(ended by the stream, as HTTP/2 allows) reaches the build whole, found by trying it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cohortroute import CohortRouter
from cohortroute.upstream import Upstream
from tests.apps import asgi_version, communicator
from tests.test_upstream_asgi import http_scope, lifespan
from tests.upstream_helpers import echo_build, serving


@pytest.fixture
def build() -> Iterator[str]:
    with serving(echo_build("v2")) as url:
        yield url


def _h2_scope(method: str) -> dict[str, Any]:
    scope = http_scope("/upload")
    scope["http_version"] = "2"
    scope["method"] = method
    scope["headers"] = [(b"host", b"acme.example.com")]  # no content-length: the stream ends it
    return scope


async def _send(router: Any, scope: dict[str, Any], pieces: list[bytes]) -> dict[str, Any]:
    comm = communicator(router, scope)
    for index, piece in enumerate(pieces):
        more = index < len(pieces) - 1
        await comm.send_input({"type": "http.request", "body": piece, "more_body": more})
    start = await comm.receive_output(5)
    assert start["status"] == 200
    data = b""
    while True:
        message = await comm.receive_output(5)
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(5)
    answer: dict[str, Any] = json.loads(data)
    return answer


@pytest.mark.parametrize(
    ("method", "pieces", "length"),
    [
        ("POST", [b"a" * 1000, b"b" * 2000, b""], 3000),
        ("PUT", [b"c" * 5], 5),
        ("GET", [b""], 0),
    ],
)
def test_an_http2_body_without_a_length_is_forwarded_whole(
    build: str, method: str, pieces: list[bytes], length: int
) -> None:
    upstream = Upstream(build)
    router = CohortRouter(
        apps={"v1": asgi_version("v1"), "v2": upstream},
        domains=["example.com"],
        register_tenants=False,
    )
    router.store.pin("acme", "v2")

    async def inside() -> dict[str, Any]:
        return await _send(router, _h2_scope(method), pieces)

    try:
        answer = asyncio.run(lifespan(router, inside))
    finally:
        router.close()
        upstream.close()
    assert answer["method"] == method
    assert answer["body_length"] == length
    if not length:  # an empty body is sent as none, not as an empty chunked one
        assert "transfer-encoding" not in answer["headers"]

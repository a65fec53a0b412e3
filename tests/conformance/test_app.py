"""The conformance app's own tests; they pass the same bare and through the router."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from .app import DONE, app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_root_sees_lifespan_state(client: TestClient) -> None:
    assert client.get("/").json() == {"started": True, "root_path": ""}


def test_put_then_get_an_item(client: TestClient) -> None:
    assert client.put("/items/1", json={"name": "tea", "price": 2.5}).status_code == 200
    assert client.get("/items/1").json() == {"name": "tea", "price": 2.5}


def test_validation_error_is_422(client: TestClient) -> None:
    assert client.put("/items/1", json={"name": "tea"}).status_code == 422


def test_missing_item_is_404(client: TestClient) -> None:
    response = client.get("/items/99")
    assert (response.status_code, response.json()) == (404, {"detail": "no such item"})


def test_sync_view_with_query(client: TestClient) -> None:
    assert client.get("/sync", params={"q": "x y"}).json() == {"q": "x y"}


def test_streaming_response(client: TestClient) -> None:
    assert client.get("/stream").text == "part0;part1;part2;"


def test_large_body_echo(client: TestClient) -> None:
    body = b"x" * 300_000
    assert client.post("/echo", content=body).content == body


def test_chunked_body_echo(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"one,"
        yield b"two"

    assert client.post("/echo", content=chunks()).content == b"one,two"


def test_background_task_runs(client: TestClient) -> None:
    DONE.clear()
    assert client.post("/later").json() == {"queued": True}
    assert DONE == ["task"]


def test_cookies_round_trip(client: TestClient) -> None:
    first = client.get("/cookie")
    assert first.json() == {"seen": None}
    assert client.get("/cookie").json() == {"seen": "oat"}


def test_redirect_is_followed(client: TestClient) -> None:
    response = client.get("/old")
    assert response.history[0].status_code == 307 and response.json()["started"] is True


def test_exception_handler(client: TestClient) -> None:
    response = client.get("/boom")
    assert (response.status_code, response.json()) == (418, {"error": "boom"})


def test_head_has_no_body(client: TestClient) -> None:
    response = client.head("/sync")
    assert response.status_code in (200, 405) and response.content == b""


def test_unknown_path_is_404(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404


def test_websocket_echo_sees_state(client: TestClient) -> None:
    with client.websocket_connect("/ws") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "echo hi True"


def test_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/items/{item_id}" in paths

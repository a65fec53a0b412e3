"""The ASGI router under real uvicorn and hypercorn (asyncio and trio workers), on 127.0.0.1:
lifespan state per version, WSGI versions with PEP 3333 whole, lifespan failures, Hosts."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..test_faults import poll
from .servers import ROOT, bin_path, free_port, get, serve

pytestmark = pytest.mark.e2e

APP = "tests.e2e.asgiapp:app"


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [bin_path("uvicorn"), "--host", "127.0.0.1", "--port", str(port), APP]
    worker = server.split("-")[1]
    return [bin_path("hypercorn"), "-k", worker, "-b", f"127.0.0.1:{port}", APP]


SERVERS = ["uvicorn", "hypercorn-asyncio", "hypercorn-trio"]


@pytest.fixture(params=SERVERS, scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    with serve(command(request.param, port), port):
        yield port


def raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and read the whole answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_each_version_has_its_own_lifespan_state(server: int) -> None:
    assert get(server, "initech.example.com") == (200, "v1 sees v1")
    assert get(server, "globex.example.com") == (200, "v3 sees v3")
    assert get(server, "acme.example.com") == (200, "v2 flask")


def test_wsgi_requests_run_concurrently(server: int) -> None:
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda _: get(server, "acme.example.com", "/together", 15), range(6))
        )
    assert answers == [(200, "together")] * 6


def test_wsgi_response_iterables_are_closed(server: int) -> None:
    for _ in range(5):
        assert get(server, "acme.example.com", "/closing") == (200, "closing")
    # close() runs once the response is out, so the client may be a step ahead of it.
    assert poll(lambda: get(server, "acme.example.com", "/closed") == (200, "5"), 5) is not None


def test_a_chunked_upload_reaches_a_wsgi_version_whole(server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        connection.putrequest("POST", "/upload", skip_host=True)
        connection.putheader("Host", "acme.example.com")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for piece in (b"hello ", b"chunked ", b"world"):
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"19 bytes")
    finally:
        connection.close()


def test_http_10_without_host_gets_the_default(server: int) -> None:
    answer = raw(server, b"GET / HTTP/1.0\r\n\r\n")
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"200"
    assert answer.endswith(b"v1 sees v1")


def test_several_host_headers_are_400_or_refused_by_the_server(server: int) -> None:
    answer = raw(
        server,
        b"GET / HTTP/1.1\r\nHost: acme.example.com\r\nHost: globex.example.com\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"400"


@pytest.mark.parametrize("name", SERVERS)
def test_a_failing_startup_stops_the_server(name: str) -> None:
    port = free_port()
    environment = dict(os.environ, PYTHONPATH=str(ROOT), COHORTROUTE_FAIL_STARTUP="1")
    done = subprocess.run(
        command(name, port), cwd=ROOT, env=environment, capture_output=True, timeout=30
    )
    output = (done.stdout + done.stderr).decode()
    # The server stopped (subprocess.run would time out on one still serving); hypercorn exits
    # with 0 after a lifespan failure, as it does for a bare app.
    assert done.returncode != 0 or name.startswith("hypercorn"), output
    assert "v3 cannot reach its database" in output
    assert "Running on" not in output or "LifespanFailureError" in output

"""Assignment backends under real gunicorn, cookie sampling in headless Chromium, signed
overrides and cookie sampling under real uvicorn."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cohortroute.assign.tokens import mint
from cohortroute.assign.visitors import COOKIE

from .assignapp import OVERRIDE_KEY
from .browser import chromium_page, require_chromium
from .servers import bin_path, free_port, get, serve


@pytest.mark.e2e
def test_failing_backends_under_gunicorn_never_fail_a_request() -> None:
    port = free_port()
    command = [
        bin_path("gunicorn"),
        "-w", "1", "--threads", "4",
        "-b", f"127.0.0.1:{port}",
        "tests.e2e.assignapp:failing",
    ]  # fmt: skip
    hosts = [f"t{i}.example.com" for i in range(30)] + [f"typo{i}.example.com" for i in range(10)]
    with serve(command, port):
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda host: get(port, host), hosts))
        status = json.loads(get(port, "example.com", "/_status")[1])
    failed = [(host, code) for host, (code, _) in zip(hosts, answers, strict=True) if code != 200]
    assert failed == []
    for host, (_, body) in zip(hosts, answers, strict=True):
        tenant = host.split(".")[0]
        reason = "unmounted" if tenant.startswith("typo") else "default"
        assert body == f"v1 {tenant} {reason} |/"  # the fallback
    errors = status["assign_errors"]
    assert errors["raises"] == len(hosts)  # every miss asked it, and counted its error
    assert errors["hangs"] == len(hosts)  # timed out, or skipped as busy while others hang
    assert status["store_errors"] >= 10  # the unmounted version is counted as well


@pytest.mark.e2e
def test_a_visitor_keeps_its_sampled_version_across_visits_in_chromium() -> None:
    require_chromium()
    port = free_port()
    command = [bin_path("gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
               "tests.e2e.assignapp:visitors"]  # fmt: skip
    with serve(command, port), chromium_page() as page:
        first = page.goto(f"http://localhost:{port}/")
        assert first is not None and first.status == 200
        version = page.inner_text("body").split()[0]
        assert first.headers["vary"] == "Cookie"
        cookies = page.context.cookies()
        assert [c["name"] for c in cookies] == ["__Host-cohortroute_visitor"]
        cookie = cookies[0]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert cookie["expires"] > first.request.timing["startTime"] / 1000 + 150 * 86400
        for _ in range(5):  # each visit may reach either gunicorn worker
            again = page.goto(f"http://localhost:{port}/")
            assert again is not None and "set-cookie" not in again.headers
            assert page.inner_text("body").split()[0] == version
        assert page.context.cookies()[0]["value"] == cookie["value"]
        page.goto(f"http://acme.localhost:{port}/")  # a tenant host: the tenant decides
        assert page.inner_text("body").startswith("v1 acme pin")


def fetch(
    port: int, host: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, str]:
    """GET / from 127.0.0.1:port with ``host`` and ``headers``: the response and its body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response, response.read().decode()
    finally:
        connection.close()


def body(port: int, host: str, headers: dict[str, str] | None = None) -> str:
    """The body of a 200 answer to GET / (see :func:`fetch`)."""
    response, text = fetch(port, host, headers)
    assert response.status == 200, text
    return text


@pytest.mark.e2e
def test_under_uvicorn_a_token_serves_its_version_and_a_visitor_keeps_its_version() -> None:
    port = free_port()
    command = [bin_path("uvicorn"), "--host", "127.0.0.1", "--port", str(port),
               "tests.e2e.assignapp:asgi_assign"]  # fmt: skip
    token = mint("e2e", OVERRIDE_KEY, "acme", "v2", time.time() + 3600)
    with serve(command, port):
        assert body(port, "acme.localhost") == "v1 sees v1 default"
        signed = {"X-Cohortroute-Override": token}
        assert body(port, "acme.localhost", signed) == "v2 sees v2 override"
        in_cookie = {"Cookie": f"cohortroute_override={token}"}
        assert body(port, "acme.localhost", in_cookie) == "v2 sees v2 override"
        assert body(port, "globex.localhost", signed) == "v1 sees v1 default"  # another tenant

        seen = set()
        for _ in range(20):  # each a new visitor: about half are sampled into v2
            first, _ = fetch(port, "localhost")
            assert first.status == 200 and first.getheader("Vary") == "Cookie"
            set_cookie = first.getheader("Set-Cookie")
            assert set_cookie is not None and set_cookie.startswith(f"{COOKIE}=")
            value = set_cookie.split(";", 1)[0].split("=", 1)[1]
            visitor = {"Cookie": f"{COOKIE}={value}"}
            answers = {body(port, "localhost", visitor) for _ in range(3)}
            assert len(answers) == 1  # the visitor keeps its version
            (answer,) = answers
            assert answer in ("v1 sees v1 no-tenant", "v2 sees v2 backend")
            assert fetch(port, "localhost", visitor)[0].getheader("Set-Cookie") is None
            seen.add(answer.split()[0])
        assert seen == {"v1", "v2"}  # all 20 in one version: 1 chance in 500,000

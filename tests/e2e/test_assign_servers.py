"""Assignment backends under real gunicorn, and cookie sampling in headless Chromium."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

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

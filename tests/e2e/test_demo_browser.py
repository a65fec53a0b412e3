"""``cohortroute demo`` in a real browser: headless Chromium, driven by Playwright.

The demo runs in its own process on a free port with a temporary SQLite store; the CLI changes
that store from another process, as an operator would from another terminal. Chromium resolves
``*.localhost`` to loopback by itself, so ``http://acme.localhost:PORT/`` reaches the demo with
no host-resolver rules. Screenshots go to the test's tmp directory (never into the repository).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cohortroute.demo import NEW, STABLE

from .browser import chromium_page, require_chromium
from .servers import free_port, serve

PIN_SHOWS_WITHIN = 2.0
"""Seconds a CLI change may take to show on a reload (the demo checks every 0.5 s)."""

# The header colours that tell the versions apart at a glance (demo.LOOKS), as CSS computes them.
BLUE = "rgb(29, 78, 216)"  # 2026.11, stable
PURPLE = "rgb(147, 51, 234)"  # 2026.12, new


@pytest.mark.e2e
def test_demo_pages_in_chromium(tmp_path: Path) -> None:
    require_chromium()  # before starting anything: skip (or fail under CI=true) with the reason
    from playwright.sync_api import ConsoleMessage, Request, expect

    store = f"sqlite:///{tmp_path / 'demo.db'}"
    port = free_port()
    demo = [sys.executable, "-m", "cohortroute", "demo", "--port", str(port), "--store", store]
    with serve(demo, port) as server, chromium_page() as page:
        errors: list[str] = []  # script errors, and resources that failed to load
        elsewhere: list[str] = []  # anything the pages load from another origin (fonts, CDNs)
        ours = re.compile(rf"http://([a-z0-9-]+\.)?localhost:{port}/")

        def on_console(message: ConsoleMessage) -> None:
            # The demo answers /favicon.ico with 404 (it has no icon); Chromium logs that.
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
                errors.append(f"console: {message.text} ({message.location['url']})")

        def on_request(request: Request) -> None:
            if not ours.match(request.url):
                elsewhere.append(request.url)

        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", on_console)
        page.on("request", on_request)

        # 1. A tenant's page: which version served it, in its colour, and why.
        response = page.goto(f"http://acme.localhost:{port}/")
        assert response is not None and response.status == 200
        assert response.headers["x-cohortroute-tenant"] == "acme"
        expect(page).to_have_title(f"acme on {NEW} · {NEW} (new)")
        expect(page.locator("header h1")).to_have_text(f"{NEW} (new)")
        expect(page.locator("header h1")).to_be_visible()
        expect(page.locator("header")).to_have_css("background-color", PURPLE)
        expect(page.locator("p.lead")).to_have_text(f"Tenant acme is served by version {NEW}.")
        # acme's bucket (701) is inside the seeded 10 % rollout (1000 of 10000 buckets).
        expect(page.locator("p.why")).to_have_text("rollout — bucket 701 < 1000 of 10000")
        page.screenshot(path=tmp_path / "1-acme.png", full_page=True)

        # 2. The index lists the tenants as links; following one shows that tenant's page.
        page.goto(f"http://localhost:{port}/")
        expect(page.locator("header h1")).to_have_text(f"{STABLE} (stable)")
        expect(page.locator("table a")).to_have_count(10)
        globex_row = page.locator("tr", has=page.get_by_role("link", name="globex.localhost"))
        expect(globex_row.locator(".badge")).to_have_text(STABLE)
        page.screenshot(path=tmp_path / "2-index.png", full_page=True)
        page.get_by_role("link", name="globex.localhost").click()
        expect(page).to_have_url(f"http://globex.localhost:{port}/")
        expect(page.locator("header h1")).to_have_text(f"{STABLE} (stable)")
        expect(page.locator("header")).to_have_css("background-color", BLUE)
        expect(page.locator("p.lead")).to_have_text(f"Tenant globex is served by version {STABLE}.")
        expect(page.locator("p.why")).to_have_text("default — bucket 8056 >= 1000 of 10000")

        # 3. Pin globex from the CLI in another process; a reload shows it within 2 s.
        pin = subprocess.run(
            [sys.executable, "-m", "cohortroute", "--store", store, "pin", "globex", NEW],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert pin.returncode == 0, pin.stderr
        pinned = time.monotonic()
        heading = page.locator("header h1")
        while True:
            page.reload()
            if heading.inner_text() == f"{NEW} (new)":
                break
            waited = time.monotonic() - pinned
            assert waited < PIN_SHOWS_WITHIN, f"the pin did not show within {PIN_SHOWS_WITHIN}s"
            time.sleep(0.1)
        expect(page).to_have_url(f"http://globex.localhost:{port}/")
        expect(page.locator("header")).to_have_css("background-color", PURPLE)
        expect(page.locator("p.lead")).to_have_text(f"Tenant globex is served by version {NEW}.")
        expect(page.locator("p.why")).to_have_text(f"pin — pinned to {NEW}")

        # 4. A screenshot of the result, to look at (it stays in the tmp directory).
        shot = tmp_path / "3-globex-pinned.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

        assert not errors, errors
        assert not elsewhere, f"the pages loaded from elsewhere: {elsewhere}"
        assert server.poll() is None, "the demo stopped while the browser used it"

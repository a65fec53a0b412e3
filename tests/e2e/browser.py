"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, for browser tests.

Playwright's own browser download (``playwright install``) is never used: the tests launch the
system Chromium through ``executable_path``. When Chromium or the ``playwright`` package is
missing the test skips, with the reason, on a developer's machine, and fails under ``CI=true``.
Every wait is bounded, and the browser is always closed (also when a test fails).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ..services import in_ci

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (``apt-get install chromium``)."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No outbound connections of Chromium's own (they are refused in CI, and slow things down).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The tests only talk to loopback: a proxy from the environment must not get in the way.
    "--no-proxy-server",
]

LAUNCH_TIMEOUT_MS = 15_000
"""How long Chromium may take to start."""

ACTION_TIMEOUT_MS = 5_000
"""How long any navigation, click or expectation may take."""


def require_chromium() -> None:
    """Skip (or under ``CI=true`` fail) the current test unless Chromium and Playwright are here."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if not missing:
        return
    message = f"browser tests need {' and '.join(missing)}"
    if in_ci():
        pytest.fail(f"{message}. CI=true: this fails the build instead of skipping.", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def chromium_page(width: int = 1024, height: int = 768) -> Iterator[Page]:
    """A fresh page in a newly launched headless Chromium; the browser is closed afterwards."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
            try:
                yield context.new_page()
            finally:
                context.close()
        finally:
            browser.close()

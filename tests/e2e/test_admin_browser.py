"""The admin console in headless Chromium: a whole rollout clicked through, checked against the CLI.

``cohortroute admin`` runs in its own process on a free port with a temporary SQLite store and
a token from the environment; every page is compared with what ``cohortroute.cli.run`` answers
in-process for the same store. Screenshots go to the test's tmp directory.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cohortroute import open_store
from cohortroute.cli import run

from .browser import chromium_page, require_chromium
from .servers import bin_path, free_port, serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

TOKEN = "browser-test-token-0123456789"
TENANTS = [f"tenant{i:02d}" for i in range(40)]

# Labels every page must have for each of its form controls (checked by script in the page).
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.name)"""


def cli(store: str, *argv: str) -> Any:
    """What ``cohortroute ARGV --json --store STORE`` prints, parsed."""
    out, err = io.StringIO(), io.StringIO()
    code = run([*argv, "--json", "--store", store], out=out, err=err)
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def tab_order(page: Page, presses: int) -> list[str]:
    """The accessible names of the elements focused by pressing Tab ``presses`` times."""
    names = []
    page.locator("body").focus()
    for _ in range(presses):
        page.keyboard.press("Tab")
        names.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return (e.labels && e.labels.length ? e.labels[0].textContent : e.textContent)"
                ".trim(); }"
            )
        )
    return names


def confirm(page: Page, base: str, action: str) -> None:
    """Open the rollout page, choose ``action``, read the confirmation, confirm it."""
    page.goto(f"{base}/rollout")
    page.get_by_role("button", name=action.capitalize(), exact=True).click()
    assert page.url.startswith(f"{base}/rollout/confirm?action={action}")


@pytest.mark.e2e
def test_a_whole_rollout_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    store = f"sqlite:///{tmp_path / 'admin.db'}"
    seeded = open_store(store)
    seeded.register_versions(["v1", "v2"], "v1")
    seeded.register_tenants(TENANTS)
    seeded.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [bin_path("cohortroute"), "admin", "--port", str(port), "--store", store]
    env = {"COHORTROUTE_ADMIN_TOKENS": f"olivia:{TOKEN}", "COHORTROUTE_ADMIN_OPERATORS": "olivia"}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve(command, port, env=env) as _server, chromium_page(1200, 900) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        expected = "the server responded with a status of 401"  # the login page itself

        # Login: without the token there is only the login form.
        response = page.goto(f"{base}/")
        assert response is not None and response.status == 401
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("h1")).to_have_text("Overview")
        status = cli(store, "status")
        expect(page.locator("dd").first).to_have_text(status["default"])
        page.screenshot(path=shots / "1-overview.png", full_page=True)

        # Keyboard: the skip link, the navigation and the logout button are reachable by Tab.
        order = tab_order(page, 7)
        assert order[:7] == [
            "Skip to content",
            "Overview",
            "Rollout",
            "Tenants",
            "Signals",
            "Audit log",
            "Log out",
        ], order

        # Start a rollout from the rollout page.
        page.get_by_role("link", name="Rollout").click()
        assert page.evaluate(UNLABELLED) == []
        page.get_by_label("Candidate version").select_option("v2")
        page.get_by_label("Plan (percentages, comma-separated)").fill("10,50,100")
        page.get_by_role("button", name="Start rollout").click()
        expect(page.get_by_role("status")).to_be_visible()
        rollout = cli(store, "rollout", "status")["rollout"]
        assert rollout["candidate"] == "v2" and rollout["percent"] == 10.0

        # The preview on the page is exactly the CLI's.
        page.goto(f"{base}/rollout")
        expect(page.locator('dd[data-live="Percent"]')).to_have_text("10%")
        expect(page.locator('dd[data-live="Plan"]')).to_have_text("10%, 50%, 100%")
        preview = cli(store, "rollout", "preview")
        expect(page.locator("dd", has_text=re.compile(r"^\d+$")).first).to_have_text(
            str(preview["count"])
        )
        shown = page.locator("main h3 + ul a").all_text_contents()
        assert shown == preview["moves"]
        page.screenshot(path=shots / "2-rollout.png", full_page=True)

        # Advance: the confirmation lists the same tenants, then the store is at 50 %.
        confirm(page, base, "advance")
        assert page.locator("main h3 + ul a").all_text_contents() == preview["moves"]
        page.screenshot(path=shots / "3-confirm-advance.png", full_page=True)
        page.get_by_role("button", name="Confirm advance").click()
        assert cli(store, "rollout", "status")["rollout"]["percent"] == 50.0

        # Halt with a reason (escaped on every page that shows it).
        confirm(page, base, "halt")
        assert page.evaluate(UNLABELLED) == []
        page.get_by_label("Reason (kept in the audit log)").fill("<b>p95 up</b>")
        page.get_by_role("button", name="Confirm halt").click()
        halted = cli(store, "rollout", "status")["rollout"]
        assert halted["halted"] is True and halted["halt_reason"] == "<b>p95 up</b>"
        page.goto(f"{base}/")
        expect(page.locator('dd[data-live="Halt reason"]')).to_have_text("<b>p95 up</b>")

        # Roll back one tenant that moved, from its page.
        moved = preview["moves"][0]
        assert cli(store, "explain", moved)["version"] == "v2"
        page.goto(f"{base}/tenants?prefix={moved}")
        page.get_by_role("link", name=moved, exact=True).click()
        expect(page.locator("dd").first).to_have_text("v2")
        assert page.evaluate(UNLABELLED) == []
        page.get_by_role("button", name="Roll back this tenant").click()
        page.get_by_role("button", name=f"Confirm rollback of {moved}").click()
        assert cli(store, "explain", moved)["version"] == "v1"
        page.goto(f"{base}/tenants/{moved}")
        expect(page.locator("dd").first).to_have_text("v1")
        page.screenshot(path=shots / "4-tenant.png", full_page=True)

        # Resume and finalize: v2 becomes the default, the rollout ends.
        confirm(page, base, "resume")
        page.get_by_role("button", name="Confirm resume").click()
        confirm(page, base, "finalize")
        page.get_by_role("button", name="Confirm finalize").click()
        final = cli(store, "status")
        assert final["default"] == "v2" and final["rollout"] is None
        page.goto(f"{base}/")
        expect(page.locator("dd").first).to_have_text("v2")

        # The audit log names the operator for every action.
        page.goto(f"{base}/audit?actor=olivia")
        actions = page.locator("tbody tr td:nth-child(4)").all_text_contents()
        assert any(a.startswith("rollout-start") for a in actions), actions
        assert len(actions) >= 5
        assert page.evaluate(UNLABELLED) == []
        page.screenshot(path=shots / "5-audit.png", full_page=True)
        # Signals: one chart per metric, reachable from the navigation, labelled.
        page.get_by_role("link", name="Signals").click()
        expect(page.locator("svg[role=img]")).to_have_count(4)
        assert page.evaluate(UNLABELLED) == []
        page.screenshot(path=shots / "6-signals.png", full_page=True)
        assert [e for e in errors if expected not in e] == []
        assert len(errors) <= 1

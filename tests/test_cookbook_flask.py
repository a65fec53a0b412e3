"""The Flask cookbook under gunicorn: two blueprint sets, a tag rule moves a tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cookbooks import get_json, prepared_store
from .e2e.servers import bin_path, free_port, get, serve

pytestmark = pytest.mark.e2e


def test_a_tagged_tenant_gets_the_new_blueprints_and_the_others_the_old(tmp_path: Path) -> None:
    url, store = prepared_store(tmp_path, ["2026.11", "2026.12"])
    store.tag("acme", "beta")
    store.set_rule("beta", "2026.12")
    store.close()
    port = free_port()
    command = [
        bin_path("gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "examples.cookbook_flask.app:app",
    ]
    with serve(command, port, env={"COHORTROUTE_STORE": url}):
        acme = get_json(port, "acme.example.com")
        checkout = get_json(port, "acme.example.com", "/checkout/")
        globex = get_json(port, "globex.example.com")
        globex_checkout, _ = get(port, "globex.example.com", "/checkout/")
    assert acme == {
        "page": "catalog with search",
        "version": "2026.12",
        "tenant": "acme",
        "reason": "tag",
    }
    assert checkout["page"] == "one-page checkout"
    assert (globex["page"], globex["reason"]) == ("catalog", "default")
    assert globex_checkout == 404  # the old blueprint set has no checkout

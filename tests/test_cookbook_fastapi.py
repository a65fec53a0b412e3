"""The FastAPI cookbook under uvicorn: per-version lifespans and the decision dependency."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cookbooks import get_json, prepared_store
from .e2e.servers import bin_path, free_port, serve

pytestmark = pytest.mark.e2e


def test_each_tenant_is_served_its_version_with_that_versions_lifespan(tmp_path: Path) -> None:
    url, store = prepared_store(tmp_path, ["2026.11", "2026.12"])
    store.pin("acme", "2026.12")
    store.close()
    port = free_port()
    command = [bin_path("uvicorn"), "examples.cookbook_fastapi.app:app", "--port", str(port)]
    with serve(command, port, env={"COHORTROUTE_STORE": url}):
        acme = get_json(port, "acme.example.com")
        globex = get_json(port, "globex.localhost")
    assert acme == {
        "version": "2026.12",
        "greeting": "welcome back",
        "tenant": "acme",
        "reason": "pin",
        "pool": "pool of 2026.12",
    }
    assert globex["version"] == "2026.11"
    assert (globex["reason"], globex["pool"]) == ("default", "pool of 2026.11")

"""Flask to FastAPI tenant by tenant: one uvicorn serves the WSGI and the ASGI version."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute import RolloutController

from .cookbooks import get_json, prepared_store
from .e2e.servers import bin_path, free_port, serve

pytestmark = pytest.mark.e2e


def test_pinned_and_rolled_out_tenants_get_fastapi_the_rest_keep_flask(tmp_path: Path) -> None:
    url, store = prepared_store(tmp_path, ["2026.11", "2026.12"])
    tenants = [f"shop{number}" for number in range(12)]
    RolloutController(store).register(tenants)
    store.pin("qa", "2026.12")
    store.start_rollout("2026.12", percent=50, actor="test")
    expected = {"qa": "fastapi"}
    for tenant in tenants:
        version = RolloutController(store).explain(tenant).version
        expected[tenant] = "fastapi" if version == "2026.12" else "flask"
    store.close()
    assert set(expected.values()) == {"flask", "fastapi"}
    port = free_port()
    command = [bin_path("uvicorn"), "examples.flask_to_fastapi.app:app", "--port", str(port)]
    with serve(command, port, env={"COHORTROUTE_STORE": url}):
        served = {
            tenant: get_json(port, f"{tenant}.example.com", "/orders/7") for tenant in expected
        }
    for tenant, framework in expected.items():
        assert served[tenant] == {"order": 7, "framework": framework, "tenant": tenant}

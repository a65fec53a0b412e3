"""The example assignment backends in examples/assign_backends/, in a real router."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from werkzeug.test import Client

from cohortroute import AssignmentBackend, CohortRouter, Reason, RequestView, RolloutController
from cohortroute._clock import ManualClock
from cohortroute.testing import check_assignment_backend

from .apps import wsgi_version

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "assign_backends"))

from flag_service import FlagService
from plan_tier import PlanTier
from region import RegionLast
from staff import InternalStaff


def router_with(*backends: AssignmentBackend, clock: ManualClock | None = None) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        assign=list(backends),
        register_tenants=False,
        clock=clock or ManualClock(),
    )


def served(router: CohortRouter, tenant: str) -> str:
    response = Client(router).get("/", headers={"Host": f"{tenant}.example.com"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def accounts(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (subdomain TEXT PRIMARY KEY, plan TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?)", [("acme", "paid"), ("globex", "free")])
    return path


def test_plan_tier_serves_paid_accounts_the_preview_and_follows_plan_changes(
    accounts: Path,
) -> None:
    clock = ManualClock()
    backend = PlanTier(str(accounts), version="v2", ttl=60)
    check_assignment_backend(backend, tenants=["acme", "globex", "nobody"], versions=["v1", "v2"])
    router = router_with(backend, clock=clock)
    assert served(router, "acme") == "v2 acme backend |/"
    assert served(router, "globex") == "v1 globex default |/"
    assert router.explain("acme").detail == "plan: paid plan in the accounts table"
    with sqlite3.connect(accounts) as db:
        db.execute("UPDATE accounts SET plan = 'paid' WHERE subdomain = 'globex'")
    assert served(router, "globex").startswith("v1 ")  # cached for its ttl
    router.invalidate("globex")
    assert served(router, "globex") == "v2 globex backend |/"
    with sqlite3.connect(accounts) as db:
        db.execute("UPDATE accounts SET plan = 'free' WHERE subdomain = 'acme'")
    clock.advance(61)
    assert served(router, "acme").startswith("v1 ")  # the ttl ran out


def test_region_last_keeps_eu_tenants_on_the_default_until_finalize() -> None:
    regions = {"acme": "eu", "globex": "us"}
    backend = RegionLast(regions.get, hold={"eu"})
    check_assignment_backend(backend, tenants=["acme", "globex"], versions=["v1", "v2"])
    router = router_with(backend)
    controller = RolloutController(router.store, assign=router.chain)
    controller.start("v2", percent=100)
    assert served(router, "globex") == "v2 globex rollout |/"
    assert served(router, "acme") == "v1 acme backend |/"
    assert "region eu goes last" in controller.explain("acme").detail
    controller.finalize()
    assert served(router, "acme") == "v2 acme default |/"


class _Flags(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, Any]] = {}
    release: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        tenant = self.path.rsplit("/", 1)[-1]
        if tenant == "slow":
            self.release.wait(10)  # past the backend's timeout
        if tenant not in self.answers:
            self.send_error(404)
            return
        body = json.dumps(self.answers[tenant]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flag_server() -> Iterator[str]:
    _Flags.answers = {"acme": {"version": "v2"}, "slow": {"version": "v2"}, "boom": "x"}
    _Flags.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flags)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Flags.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_flag_service_answers_and_a_slow_or_dead_service_never_fails_a_request(
    flag_server: str,
) -> None:
    backend = FlagService(flag_server, timeout=0.2)
    check_assignment_backend(backend, tenants=["acme", "globex"], versions=["v1", "v2"])
    router = router_with(backend)
    assert served(router, "acme") == "v2 acme backend |/"
    assert served(router, "globex") == "v1 globex default |/"  # 404: no opinion
    assert served(router, "slow") == "v1 slow default |/"  # past the timeout
    assert router.status()["assign_errors"] == {"flags": 1}
    assert "no answer within its timeout" in router.explain("slow").errors[0]
    dead = router_with(FlagService("http://127.0.0.1:9", timeout=0.2))  # nothing listens there
    assert served(dead, "acme") == "v1 acme default |/"
    assert dead.status()["assign_errors"] == {"flags": 1}
    assert router.explain("acme").reason is Reason.BACKEND


def test_internal_staff_get_the_preview_on_any_tenant_only_through_the_proxy() -> None:
    backend = InternalStaff("v2", proxies=["10.0.0.0/8"])
    check_assignment_backend(
        backend,
        tenants=["acme", "globex"],
        versions=["v1", "v2"],
        requests=[
            RequestView(headers={"X-Staff": "1"}, client="10.1.2.3"),
            RequestView(headers={"X-Staff": "1"}, client="203.0.113.9"),
            RequestView(client="10.1.2.3"),
        ],
    )
    router = router_with(backend)
    client = Client(router)

    def get(tenant: str, headers: dict[str, str], address: str) -> str:
        headers = {"Host": f"{tenant}.example.com", **headers}
        response = client.get("/", headers=headers, environ_base={"REMOTE_ADDR": address})
        return response.get_data(as_text=True)

    assert get("acme", {"X-Staff": "1"}, "10.1.2.3") == "v2 acme backend |/"
    assert get("acme", {"x-staff": "1"}, "203.0.113.9") == "v1 acme default |/"  # not via proxy
    assert get("acme", {}, "10.1.2.3") == "v1 acme default |/"
    router.store.pin("globex", "v1")  # a pin ranks above it: the customer's commitment holds
    assert get("globex", {"X-Staff": "1"}, "10.1.2.3") == "v1 globex pin |/"
    assert "request-aware backend staff may override it" in router.explain("acme").detail

"""One truth about versions: what a router serves, ``router.explain()`` and ``cohortroute
explain`` agree, also when the store names a version the router does not mount."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohortroute import CohortRouter, Decision, Reason
from cohortroute.explain import explain, serving_versions
from cohortroute.migrations import Migrations
from cohortroute.router.base import DECISION_KEY
from cohortroute.store import MemoryStore, Store

from .cli_inproc import cli


def recording_app(name: str, seen: list[Decision]) -> Any:
    """A WSGI version that records the decision each request carried."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["cohortroute.decision"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]

    return app


def served(router: CohortRouter, seen: list[Decision], host: str) -> tuple[str, Decision | None]:
    """The status of one request for ``host`` and the decision the version was handed."""
    statuses: list[str] = []
    before = len(seen)
    environ: dict[str, Any] = {
        "HTTP_HOST": host,
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
    }
    router(environ, lambda status, headers, exc_info=None: statuses.append(status))
    decision: Decision | None = seen[-1] if len(seen) > before else environ.get(DECISION_KEY)
    return statuses[0], decision


def fleet_router(store: Store | str, seen: list[Decision], **kwargs: Any) -> CohortRouter:
    apps = {"v1": recording_app("v1", seen), "v2": recording_app("v2", seen)}
    return CohortRouter(
        apps, domains=["example.com"], store=store, register_tenants=False, **kwargs
    )


def store_with_v3_mounted_elsewhere() -> MemoryStore:
    store = MemoryStore()
    store.mount_versions(["v1", "v2", "v3"], "v1", host="laptop", pid=1)
    return store


def test_a_pin_to_an_unmounted_version_gets_the_stores_default_not_the_routers() -> None:
    seen: list[Decision] = []
    store = store_with_v3_mounted_elsewhere()
    store.set_default("v2")  # finalized since; this router was built with default v1
    router = fleet_router(store, seen, default="v1")
    store.pin("acme", "v3")
    status, decision = served(router, seen, "acme.example.com")
    assert status.startswith("200") and decision is not None
    assert (decision.version, decision.reason) == ("v2", Reason.UNMOUNTED)
    assert decision.detail == (
        "pinned to v3, but v3 is not mounted here; the default v2 is served instead"
    )
    assert router.explain("acme") == decision


def test_when_the_stores_default_is_not_mounted_either_the_routers_default_is_served() -> None:
    seen: list[Decision] = []
    store = store_with_v3_mounted_elsewhere()
    store.set_default("v3")
    router = fleet_router(store, seen, default="v1")
    store.pin("acme", "v3")
    for tenant in ("acme", "globex"):  # pinned to v3; on the store's default v3
        _, decision = served(router, seen, f"{tenant}.example.com")
        assert decision is not None
        assert (decision.version, decision.reason) == ("v1", Reason.UNMOUNTED), tenant
        assert "this router's default v1 is served" in decision.detail
        assert router.explain(tenant) == decision
    _, decision = served(router, seen, "example.com")
    assert decision is not None and (decision.version, decision.reason) == ("v1", Reason.NO_TENANT)
    assert router.explain(None) == decision


def test_router_explain_is_exactly_what_every_request_is_served() -> None:
    seen: list[Decision] = []
    store = store_with_v3_mounted_elsewhere()
    router = fleet_router(store, seen, migrations=Migrations())
    store.set_rule("beta", "v2")
    store.set_rule("old", "v3")
    for i in range(40):
        name = f"t{i}"
        if i % 5 == 0:
            store.pin(name, ("v1", "v2", "v3")[i % 3])
        elif i % 5 == 1:
            store.tag(name, "beta" if i % 2 else "old")
    store.start_rollout("v2", 50)
    store.pin("t99", "v3")
    for i in [*range(40), 99]:
        name = f"t{i}"
        _, decision = served(router, seen, f"{name}.example.com")
        assert router.explain(name) == decision, name
    assert {d.reason for d in seen} >= {Reason.PIN, Reason.TAG, Reason.ROLLOUT, Reason.UNMOUNTED}


def test_sans_io_explain_says_when_the_serving_routers_do_not_mount_the_version() -> None:
    seen: list[Decision] = []
    store = store_with_v3_mounted_elsewhere()
    router = fleet_router(store, seen)
    store.set_default("v2")
    store.pin("acme", "v3")
    policy = store.policy()
    assert serving_versions(policy) == frozenset({"v1", "v2"})
    explained = explain(policy, store.tenant("acme"), now=0.0)
    assert explained.decision == router.explain("acme")
    assert (explained.decision.version, explained.decision.reason) == ("v2", Reason.UNMOUNTED)
    assert explained.hints[0].startswith(
        "v3 is not mounted on the routers that serve this tenant (they mount v1, v2), so they "
        "serve v2"
    )
    assert any("unpin acme" in hint for hint in explained.hints)
    # Given the versions explicitly (a router's own), and when they do mount it.
    assert explain(policy, store.tenant("acme"), now=0.0, mounted={"v2", "v3"}).decision == (
        Decision("acme", "v3", Reason.PIN, detail="pinned to v3")
    )


def test_sans_io_explain_without_mount_records_explains_the_stores_decision() -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2", "v3"], "v1")  # no router recorded where it mounts
    store.pin("acme", "v3")
    policy = store.policy()
    assert serving_versions(policy) is None
    decision = explain(policy, store.tenant("acme"), now=0.0).decision
    assert (decision.version, decision.reason) == ("v3", Reason.PIN)


def test_cli_explain_prints_what_the_fleet_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    seen: list[Decision] = []
    laptop = fleet_router(url, seen)
    laptop.store.mount_versions(["v1", "v2", "v3"], host="laptop", pid=1)
    laptop.close()
    router = fleet_router(url, seen)  # the fleet, started after the laptop
    router.store.pin("acme", "v3")
    _, decision = served(router, seen, "acme.example.com")
    assert decision is not None and decision.version == "v1"
    result = cli("explain", "acme", "--json", store=url)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert json.dumps(data).count("v3 is not mounted on the routers that serve this tenant") == 1
    assert "unmounted" in json.dumps(data) and '"v1"' in json.dumps(data)
    router.close()


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_its_documented_name_in_the_readme(reason: Reason) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"`{reason.value}`" in readme

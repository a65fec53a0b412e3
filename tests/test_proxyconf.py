"""The proxy routes as the router would: maps, the decision endpoint and Apache's prg program.

Every answer comes from the router's decision code; these tests hold the generated map and the
live answers to a real router's ``explain`` on a store with pins, tag rules, a rollout share, a
ratchet and versions the proxy has no servers for.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.errors import ConfigurationError
from cohortroute.policy import Policy, TenantRecord
from cohortroute.proxyconf import Decider, Pools, Table
from cohortroute.proxyconf.decider import MAINTENANCE, pool_name
from cohortroute.proxyconf.endpoint import DecisionEndpoint
from cohortroute.proxyconf.prg import BAD_HOST, serve
from cohortroute.proxyconf.table import DEFAULT_KEY
from cohortroute.proxyconf.watch import Watch, write_atomically
from cohortroute.store import Store, open_store
from tests.apps import wsgi_version

TENANTS = [f"t{index:03d}" for index in range(200)]
POOLS = Pools.parse(["v1=127.0.0.1:8001", "v2=127.0.0.1:8002", "v2=unix:/run/v2b.sock"])


def seeded(store: Store) -> Store:
    """v1 default, v2 candidate at 30 %, v3 known but served by no proxy pool."""
    store.register_versions(["v1", "v2", "v3"], "v1", actor="test")
    store.register_tenants(TENANTS, tags={"t001": ["beta"], "t002": ["beta"]})
    store.pin("t000", "v2")
    store.pin("t003", "v3")  # unmounted: the default
    store.set_rule("beta", "v2")
    store.start_rollout("v2", 30, salt="fixed")
    store.update_tenant("t004", "ratchet", lambda r, p: TenantRecord(r.name, ratchet="v2"))
    return store


@pytest.fixture
def store() -> Iterator[Store]:
    opened = seeded(open_store("memory://"))
    yield opened
    opened.close()


@pytest.fixture
def decider(store: Store) -> Iterator[Decider]:
    made = Decider(store, POOLS, domains=["example.com", "shop.test"])
    yield made
    made.close()


def router_answers(store: Store) -> dict[str, Any]:
    router: Any = CohortRouter(
        apps={"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        register_tenants=False,
    )
    return {tenant: router.explain(tenant) for tenant in TENANTS}


def test_the_map_sends_every_known_tenant_where_the_router_does(
    store: Store, decider: Decider
) -> None:
    table = Table.build(decider)
    expected = router_answers(store)
    assert {expected[t].reason.value for t in TENANTS} >= {"pin", "tag", "rollout", "unmounted"}
    for tenant in TENANTS:
        want = pool_name(expected[tenant].version)
        assert table.hosts[f"{tenant}.example.com"] == want, tenant
        assert table.hosts[f"{tenant}.shop.test"] == want, tenant
    assert table.default == "cohortroute_v1"
    assert table.entries()[0] == (DEFAULT_KEY, "cohortroute_v1")
    assert table.hosts["t003.example.com"] == "cohortroute_v1"  # pinned to v3: no pool
    assert table.hosts["t004.example.com"] == "cohortroute_v2"  # the ratchet


def test_live_answers_are_the_routers_for_any_host(store: Store, decider: Decider) -> None:
    expected = router_answers(store)
    for tenant in TENANTS:
        assert decider.host(f"{tenant}.example.com") == (200, pool_name(expected[tenant].version))
    # A tenant nobody has seen is decided by its bucket, as the router does.
    stranger = CohortRouter(
        apps={"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        register_tenants=False,
    ).explain("brand-new")
    assert decider.host("Brand-New.example.com:8080") == (200, pool_name(stranger.version))
    assert decider.host("www.example.com") == (200, "cohortroute_v1")
    assert decider.host("example.com") == (200, "cohortroute_v1")
    assert decider.host("evil.org") == (400, None)
    assert decider.host("bad_label!.example.com") == (400, None)
    assert decider.host("") == (400, None)


def test_a_migrating_tenant_gets_the_maintenance_pool() -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1", actor="test")
    store.start_rollout("v2", 0, salt="fixed")

    def gate(policy: Policy) -> Policy:
        assert policy.rollout is not None
        return replace(policy, rollout=replace(policy.rollout, gated=True))

    store.update_rollout("gate", gate)
    store.update_tenant(
        "busy",
        "migrate",
        lambda r, p: replace(r, state={"migration": {"status": "migrating", "to": "v2"}}),
    )
    decider = Decider(store, POOLS, domains=["example.com"])
    try:
        assert decider.explain("busy")[0] == MAINTENANCE
        assert decider.host("busy.example.com") == (503, None)
        assert Table.build(decider).hosts["busy.example.com"] == MAINTENANCE
    finally:
        decider.close()


def test_the_prg_program_answers_one_line_per_host(decider: Decider) -> None:
    out = io.StringIO()
    serve(decider, io.StringIO("t000.example.com\nwww.example.com\nevil.org\n"), out)
    assert out.getvalue().splitlines() == ["cohortroute_v2", "cohortroute_v1", BAD_HOST]


def test_the_decision_endpoint_answers_in_headers(decider: Decider) -> None:
    client = Client(DecisionEndpoint(decider))
    response = client.get("/anything", headers={"Host": "t000.example.com"})
    assert response.status_code == 200
    assert response.headers["X-Cohortroute-Pool"] == "cohortroute_v2"
    assert response.headers["X-Cohortroute-Version"] == "v2"
    assert response.headers["X-Cohortroute-Tenant"] == "t000"
    assert response.headers["X-Cohortroute-Reason"] == "pin"
    denied = client.get("/", headers={"Host": "evil.org"})
    assert (denied.status_code, denied.headers["X-Cohortroute-Status"]) == (403, "400")
    assert denied.get_data() == b""
    forwarded = Client(DecisionEndpoint(decider, "X-Forwarded-Host"))
    response = forwarded.get(
        "/", headers={"Host": "auth:8090", "X-Forwarded-Host": "t000.example.com"}
    )
    assert response.headers["X-Cohortroute-Pool"] == "cohortroute_v2"


def test_the_watch_rewrites_the_map_on_a_change_and_not_otherwise(
    decider: Decider, tmp_path: Path
) -> None:
    clock = ManualClock()
    path = tmp_path / "cohortroute.map"
    tables: list[Table] = []
    watch = Watch(
        decider,
        lambda table: "".join(f"{k} {v}\n" for k, v in table.entries()),
        str(path),
        notify=tables.append,
        clock=clock,
        rebuild_every=30,
    )
    assert watch.step() is True
    assert watch.table is not None
    on_v1 = next(h for h, pool in sorted(watch.table.hosts.items()) if pool == "cohortroute_v1")
    assert f"{on_v1} cohortroute_v1\n" in path.read_text()
    assert watch.step() is False  # same revision, not due: not even rebuilt
    decider.store.pin(on_v1.split(".")[0], "v2")
    assert watch.step() is True
    assert f"{on_v1} cohortroute_v2\n" in path.read_text()
    clock.advance(31)
    assert watch.step() is False  # rebuilt (a timed plan may have moved), nothing changed
    assert len(tables) == 2


def test_atomic_writes_leave_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "map"
    assert write_atomically(str(target), "a b\n") is True
    assert write_atomically(str(target), "a b\n") is False
    assert [p.name for p in tmp_path.iterdir()] == ["map"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (["v1"], "give VERSION=ADDRESS"),
        (["v1=http://127.0.0.1:1"], "without a scheme"),
        ([], "--upstream VERSION=ADDRESS"),
    ],
)
def test_bad_upstream_options_say_what_to_give(spec: list[str], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Pools.parse(spec)

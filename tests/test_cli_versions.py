"""``cohortroute versions``: where and when each version was last mounted, and retiring one.

The Python verbs (``Store.versions``, ``Store.retire``, ``Store.unretire``) are tested beside
the CLI's, so both keep the same behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, open_store
from cohortroute.errors import ConflictError
from cohortroute.policy import policy_from_json, policy_to_json
from cohortroute.store import MemoryStore, Store
from cohortroute.versions import RetiredVersionError

from .apps import wsgi_version
from .cli_inproc import cli, fails, isolate, ok, sqlite_url

V1, V2, V3 = "v1", "v2", "v3"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    handle = open_store(url)
    handle.register_versions([V1, V2, V3], V1, actor="router")
    yield handle
    handle.close()


def test_a_router_records_where_and_when_it_mounted_its_versions(url: str, store: Store) -> None:
    router = CohortRouter(
        {V1: wsgi_version(V1), V2: wsgi_version(V2)},
        default=V1,
        domains=["example.com"],
        store=store,
    )
    try:
        assert Client(router).get("/", headers={"Host": "acme.example.com"}).status_code == 200
    finally:
        router.close()
    listed = {info.version: info for info in store.versions()}
    assert listed[V1].mounted_host and listed[V1].mounted_pid and listed[V1].mounted_at
    assert listed[V2].mounted_at is not None and listed[V3].mounted_at is None
    data = json.loads(ok("versions", "--json", store=url))
    assert data["default"] == V1
    rows = {row["version"]: row for row in data["versions"]}
    assert rows[V1]["uses"] == ["default"] and rows[V3]["mounted_host"] is None
    text = ok("versions", store=url)
    assert str(listed[V1].mounted_host) in text and "default" in text


def test_mounts_from_one_host_are_written_once_a_minute() -> None:
    store = MemoryStore()
    store.mount_versions([V1], V1, host="web1", pid=1)
    revision = store.revision()
    store.mount_versions([V1], V1, host="web1", pid=2)  # the next worker of the same boot
    assert store.revision() == revision
    store.mount_versions([V1], V1, host="web2", pid=3)
    assert store.revision() == revision + 1
    assert store.versions()[0].mounted_host == "web2"


def test_the_stored_policy_keeps_its_former_shape_without_version_info() -> None:
    store = MemoryStore()
    store.register_versions([V1, V2], V1)
    assert "version_info" not in policy_to_json(store.policy())
    old = {"default": V1, "versions": [V1, V2], "rules": [], "rollout": None}
    assert policy_from_json(old, 3).version_info == {}


def test_retire_is_refused_while_anything_names_the_version(url: str, store: Store) -> None:
    store.pin("acme", V3)
    store.set_rule("beta", V3)
    assert "rule --remove beta" in fails(2, "versions", "retire", V3, store=url)
    store.remove_rule("beta")
    err = fails(2, "versions", "retire", V3, store=url)
    assert "pinned to v3 (acme)" in err and f"--store {url} unpin acme`" in err
    with pytest.raises(ConflictError, match=r"call unpin\('acme'\)"):
        store.retire(V3)
    store.unpin("acme")
    assert "default" in fails(2, "versions", "retire", V1, store=url)
    store.start_rollout(V2, 10)
    assert "rollout finalize" in fails(2, "versions", "retire", V2, store=url)
    assert "retired v3" in ok("versions", "retire", V3, store=url)
    assert "already retired" in ok("versions", "retire", V3, store=url)


def test_pins_rules_and_rollouts_naming_a_retired_version_are_refused(
    url: str, store: Store
) -> None:
    store.retire(V3, actor="ops")
    for command in (("pin", "acme", V3), ("rule", "beta", V3), ("rollout", "start", V3)):
        err = fails(2, *command, store=url)
        assert f"version {V3} is retired" in err and f"versions unretire {V3}`" in err
    with pytest.raises(RetiredVersionError, match=r"call unretire\('v3'\)"):
        store.pin("acme", V3)
    assert "(retired)" in ok("status", store=url)
    assert json.loads(ok("status", "--json", store=url))["retired"] == [V3]
    assert "in service again" in ok("versions", "unretire", V3, store=url)
    assert "pinned acme to v3" in ok("pin", "acme", V3, store=url)
    actions = [e.action for e in store.history(limit=3)]
    assert actions == ["pin", "unretire-version", "retire-version"]


def test_a_router_that_still_mounts_a_retired_version_leaves_it_retired() -> None:
    store = MemoryStore()
    store.register_versions([V1, V2], V1)
    store.retire(V2)
    store.mount_versions([V1, V2], V1, host="laptop", pid=9)
    listed = {info.version: info for info in store.versions()}
    assert listed[V2].retired and listed[V2].mounted_host == "laptop"


def test_unknown_versions_are_refused_by_retire(url: str, store: Store) -> None:
    assert "unknown version 'v9'" in fails(2, "versions", "retire", "v9", store=url)
    assert cli("versions", "retire", store=url).code == 2

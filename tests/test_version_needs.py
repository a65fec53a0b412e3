"""A gated rollout cannot be started ungated by mistake: routers record what versions need.

A router built with ``migrations=`` records, next to its versions, the module numbers each
version's data needs and which ``--app`` names its Migrations. ``rollout start`` then gates
without ``--app`` (or refuses, saying what to do), and the verbs that move data say which
``--app`` they need.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute import CohortRouter, ConfigurationError
from cohortroute.migrations import Migrations
from cohortroute.rollout import RolloutController
from cohortroute.store import Store, open_store

from .apps import wsgi_version
from .cli_inproc import cli, fails, isolate, sqlite_url

APP = "tests.test_version_needs:MIGRATIONS"

MIGRATIONS = Migrations()
MIGRATIONS.version("v1", 1)
MIGRATIONS.version("v2", 2)


@MIGRATIONS.upgrade(1)
def create(tenant: str) -> None:
    """Nothing to create in these tests."""


@MIGRATIONS.upgrade(2)
def add_column(tenant: str) -> None:
    """Nothing to change in these tests."""


@MIGRATIONS.downgrade(2)
def drop_column(tenant: str) -> None:
    """Nothing to change back in these tests."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def route(url: str, migrations: Migrations | None = MIGRATIONS) -> None:
    """Start (and stop) a router on the store, as a deployment would."""
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=url,
        migrations=migrations,
    )
    router.close()


def test_routers_record_what_each_version_needs_once(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    route(url)
    store = open_store(url)
    info = store.policy().version_info
    assert info["v1"]["modules"] == {"app": 1} and info["v2"]["modules"] == {"app": 2}
    assert info["v2"]["migrations"] == APP
    assert MIGRATIONS.origin == APP
    revision = store.revision()
    route(url)  # another worker of the same deployment: nothing new to record
    assert store.revision() == revision
    assert [e.action for e in store.history(limit=20)].count("version-needs") == 1
    store.close()


def test_rollout_start_without_app_gates_and_the_data_verbs_say_which_app(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    route(url)
    out = cli("rollout", "start", "v2", "--percent", "10", store=url)
    assert out.code == 0, out.err
    assert f"rollout run --app {APP}` has migrated them" in out.out
    store = open_store(url)
    rollout = store.policy().rollout
    assert rollout is not None and rollout.gated  # before: an ungated rollout, v2 on v1 data
    for verb in ("run", "finalize"):
        err = fails(2, "rollout", verb, "--once" if verb == "run" else "--force", store=url)
        assert f"rollout {verb} --app {APP}`" in err, err
    with pytest.raises(ConfigurationError, match=r"RolloutController\(store, migrations=tests"):
        RolloutController(store).run()
    err = fails(2, "rollout", "rollback", store=url)
    assert f"rollout rollback --app {APP}`" in err
    store.close()


def test_with_app_the_data_moves_and_rollback_names_the_app(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    route(url)
    store = open_store(url)
    c = RolloutController(store, migrations=MIGRATIONS, settle=0, drain=0)
    c.register(["acme"])
    c.start("v2", percent=100)
    assert c.run().ok
    err = fails(2, "rollout", "rollback", "--tenant", "acme", store=url)
    assert f"rollout rollback --app {APP}`" in err
    assert cli("rollout", "rollback", "--tenant", "acme", "--app", APP, store=url).code == 0
    store.close()


def test_migrations_that_disagree_with_the_routers_are_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    route(url)
    other = Migrations()  # v2 needs app 3 here, app 2 on the routers
    other.version("v1", 1)
    other.version("v2", 3)
    for number in (1, 2, 3):
        other.upgrade(number)(create)
    store = open_store(url)
    with pytest.raises(ConfigurationError, match=f"record app 2: .*--app {APP}"):
        RolloutController(store, migrations=other).start("v2")
    assert store.policy().rollout is None
    store.close()


def test_one_side_recorded_is_refused_without_app(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store: Store = open_store(url)
    store.register_versions(["v1", "v2", "v3"], "v1")
    route(url)  # records v1 and v2; nobody mounts v3 with migrations
    store.set_default("v3")
    err = fails(2, "rollout", "start", "v2", store=url)
    assert "no router has recorded what v3 needs" in err and f"--app {APP}" in err
    assert store.policy().rollout is None
    store.close()


def test_routers_without_migrations_record_nothing_and_start_stays_ungated(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    route(url, migrations=None)
    store = open_store(url)
    assert all("modules" not in info for info in store.policy().version_info.values())
    rollout = RolloutController(store).start("v2", percent=5)
    assert not rollout.gated
    store.close()

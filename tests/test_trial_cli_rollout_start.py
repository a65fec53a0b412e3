"""``rollout start`` of a version nobody mounts says the version is unknown.

When routers had recorded what the default version's data needs, ``rollout start 2099.1`` (a
typo, a version not deployed yet) was answered "no router has recorded what 2099.1 needs ...
pass --app myapp:migrations": advice about migrations for what is an unknown version, and
following it only led to a second error. The version is now checked first, as ``pin`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute import CohortRouter
from cohortroute.errors import UnknownVersionError
from cohortroute.migrations import Migrations
from cohortroute.rollout import RolloutController
from tests.cli_inproc import cli


def _step(tenant: str) -> None:
    pass


def _app(environ: object, start_response: object) -> list[bytes]:
    return []


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A store whose routers recorded what each version's data needs (migrations=)."""
    migrations = Migrations()
    migrations.version("v1", notes=1)
    migrations.version("v2", notes=2)
    migrations.upgrade(1, module="notes")(_step)
    migrations.upgrade(2, module="notes")(_step)
    store = f"sqlite:///{tmp_path / 'state.db'}"
    router = CohortRouter(
        apps={"v1": _app, "v2": _app},
        default="v1",
        domains=["example.com"],
        store=store,
        migrations=migrations,
        register_tenants=False,
    )
    router.close()
    return store


def test_the_cli_names_the_unknown_version(url: str) -> None:
    result = cli("rollout", "start", "v9", "--percent", "5", store=url)
    assert result.code == 2, result.out + result.err
    assert "unknown version 'v9'" in result.err
    assert "v1, v2" in result.err
    assert "--app" not in result.err


def test_the_controller_raises_unknown_version(url: str) -> None:
    rc = RolloutController(url, actor="test")
    try:
        with pytest.raises(UnknownVersionError, match="v9"):
            rc.start("v9", percent=5)
        assert rc.start("v2", percent=5).candidate == "v2"  # a known one still starts
    finally:
        rc.store.close()


def test_auto_with_a_zero_dwell_says_the_dwell_is_the_problem(url: str) -> None:
    # It used to ask for "--plan ... and --every DURATION too", both of which were given.
    result = cli("rollout", "start", "v2", "--plan", "1,5", "--every", "0", "--auto", store=url)
    assert result.code == 2, result.out + result.err
    assert "--every 0" in result.err and "above 0" in result.err
    assert "give it --plan" not in result.err

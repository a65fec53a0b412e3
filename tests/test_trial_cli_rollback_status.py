"""``rollout status`` after a whole rollback that failed on a tenant says to roll back again.

A rollback halts the rollout ("rolling back") and moves every migrated tenant back; when a
downgrade fails, the rollout stays halted with that tenant on the candidate. ``rollout status``
then advised ``rollout run --retry-failed`` (which migrates *forward*) and ``rollout resume``
(which carries the rollout on): both the opposite of what the operator was doing.
"""

from __future__ import annotations

from pathlib import Path

from cohortroute.migrations import Migrations
from cohortroute.rollout import RolloutController
from cohortroute.store import open_store
from tests.cli_inproc import cli

TENANTS = [f"t{i}" for i in range(6)]


def _migrations() -> Migrations:
    migrations = Migrations()
    migrations.version("v1", app=1)
    migrations.version("v2", app=2)

    @migrations.upgrade(1)
    def create(tenant: str) -> None:
        pass

    @migrations.upgrade(2)
    def up(tenant: str) -> None:
        pass

    @migrations.downgrade(2)
    def down(tenant: str) -> None:
        if tenant == "t3":
            raise RuntimeError("cannot go back")

    return migrations


def test_status_after_a_failed_rollback_says_to_roll_back_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    rc = RolloutController(store, migrations=_migrations(), drain=0, settle=0)
    rc.register(TENANTS)
    rc.start("v2", percent=100)
    assert rc.run().ok
    result = rc.rollback()
    assert [r.tenant for r in result.failures] == ["t3"]
    store.close()

    status = cli("rollout", "status", store=url)
    assert status.code == 0, status.err
    assert "t3: failed" in status.out
    assert "rollout rollback --app ..." in status.out
    assert "--retry-failed" not in status.out
    assert "rollout resume" not in status.out

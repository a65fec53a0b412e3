"""``rollout status`` names the tenants left migrating, with whose lease and until when.

After an interrupted or crashed ``rollout run`` (Ctrl-C twice, a killed runner, the store cut
off), tenants stay *migrating* -- answered 503 -- until a later run resumes them once their lease
expires. ``rollout status`` only counted them ("1 migrating"): not which tenants, nor when a new
run can take them over.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from cohortroute.migrations import Migrations
from cohortroute.policy import TenantRecord
from cohortroute.rollout import RolloutController
from cohortroute.store import open_store
from tests.cli_inproc import cli

MIGRATING = {"status": "migrating", "from": "v1", "to": "v2", "steps": ["app 1 -> 2"]}


def test_status_names_the_migrating_tenants_and_their_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    migrations = Migrations()
    migrations.version("v1", app=1)
    migrations.version("v2", app=2)
    migrations.upgrade(1)(lambda tenant: None)
    migrations.upgrade(2)(lambda tenant: None)
    rc = RolloutController(store, migrations=migrations, drain=0, settle=0)
    rc.register(["acme", "globex"])
    rc.start("v2", percent=5)
    lease = {"owner": "host-a:4242", "expires": 1_900_000_000.0, "generation": 3}

    def mark(record: TenantRecord, _: object) -> TenantRecord:
        return replace(record, state={**record.state, "migration": MIGRATING, "lease": lease})

    store.update_tenant("acme", "test-mark", mark, actor="test")
    store.close()

    text = cli("rollout", "status", store=url)
    assert text.code == 0, text.err
    assert "1 migrating" in text.out
    line = next(x for x in text.out.splitlines() if x.strip().startswith("acme:"))
    assert "host-a:4242" in line and "2030-03-17" in line

    data = cli("rollout", "status", "--json", store=url)
    assert data.code == 0, data.err
    assert json.loads(data.out)["migrating"] == {
        "acme": {"owner": "host-a:4242", "expires": 1_900_000_000.0}
    }

"""The Django cookbook under gunicorn: two URLconf sets, Django migrations run per tenant.

Two tenants start on 2026.11's schema; the rollout runner migrates both to 2026.12 with Django's
own migration framework (one SQLite database per tenant), a rollback takes globex back down to
0001, and gunicorn then serves each tenant the version its data is at.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .cookbooks import get_json, prepared_store
from .e2e.servers import ROOT, bin_path, free_port, get, serve

pytestmark = pytest.mark.e2e

PLAN = "examples.cookbook_django.migrations_plan:migrations"


def _run(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _schema(data: Path, tenant: str) -> tuple[list[str], list[str]]:
    with sqlite3.connect(data / f"{tenant}.sqlite3") as db:
        applied = [row[0] for row in db.execute("SELECT name FROM django_migrations")]
        columns = [row[1] for row in db.execute("PRAGMA table_info(shop_note)")]
    db.close()
    return [name for name in applied if name[:4].isdigit()], columns


def test_each_tenant_is_migrated_by_django_and_served_its_versions_urlconf(
    tmp_path: Path,
) -> None:
    url, store = prepared_store(tmp_path, ["2026.11", "2026.12"])
    store.close()
    data = tmp_path / "shop-data"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PYTHONPATH": str(ROOT),
        "SHOP_DATA": str(data),
        "COHORTROUTE_STORE": url,
    }
    python = sys.executable
    _run(env, python, "-m", "examples.cookbook_django.setup_tenants", "acme", "globex")
    cohortroute = bin_path("cohortroute")
    _run(env, cohortroute, "rollout", "start", "2026.12", "--percent", "100", "--app", PLAN)
    assert "2 moved" in _run(env, cohortroute, "rollout", "run", "--once", "--app", PLAN)
    _run(env, cohortroute, "rollout", "rollback", "--tenant", "globex", "--app", PLAN)

    assert _schema(data, "acme") == (["0001_initial", "0002_note_body"], ["id", "title", "body"])
    assert _schema(data, "globex") == (["0001_initial"], ["id", "title"])

    port = free_port()
    command = [bin_path("gunicorn"), "-b", f"127.0.0.1:{port}", "examples.cookbook_django.wsgi:app"]
    with serve(command, port, env={"SHOP_DATA": str(data), "COHORTROUTE_STORE": url}):
        assert get_json(port, "acme.example.com", "/notes/add/?title=second")["id"] == 2
        acme = get_json(port, "acme.example.com", "/notes/")
        globex = get_json(port, "globex.example.com", "/notes/")
        globex_add, _ = get(port, "globex.example.com", "/notes/add/")
    assert acme == {
        "version": "2026.12",
        "tenant": "acme",
        "notes": [{"title": "welcome acme", "body": ""}, {"title": "second", "body": ""}],
    }
    assert globex == {
        "version": "2026.11",
        "tenant": "globex",
        "notes": [{"title": "welcome globex"}],
    }
    assert globex_add == 404  # 2026.11's URLconf has no such page

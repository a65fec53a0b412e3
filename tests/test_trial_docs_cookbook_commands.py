"""The cookbooks' shell commands work when typed as written, in a fresh directory.

A new user copies the ``sh`` blocks of docs/cookbooks.md (and the usage in each example's
docstring) line by line. Two ways that broke:

* ``COHORTROUTE_STORE=... uvicorn ...`` sets the store for the server only: the ``cohortroute``
  commands on the next lines then stopped with "no store given". Every block that runs the CLI
  exports the store first.
* The Django block ran ``cohortroute rollout start`` before anything had created the store (the
  CLI never creates one), so it stopped with "there is no cohortroute store". ``setup_tenants``
  now starts the router once, which creates it.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .e2e.servers import ROOT, bin_path

_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXAMPLES = [
    "examples/cookbook_fastapi/app.py",
    "examples/cookbook_flask/app.py",
    "examples/flask_to_fastapi/app.py",
    "examples/cookbook_django/wsgi.py",
    "examples/cookbook_django/setup_tenants.py",
]


def _cookbook_blocks() -> list[str]:
    text = (ROOT / "docs" / "cookbooks.md").read_text(encoding="utf-8")
    return [match.group(1) for match in _SH_BLOCK.finditer(text)]


def _docstring(path: str) -> str:
    source = (ROOT / path).read_text(encoding="utf-8")
    return source.split('"""', 2)[1]


def _cli_without_store(lines: list[str]) -> list[str]:
    """The ``cohortroute`` command lines that no earlier ``export COHORTROUTE_STORE=`` covers."""
    exported = False
    missing = []
    for raw in lines:
        line = raw.strip()
        if line.startswith("export ") and "COHORTROUTE_STORE=" in line:
            exported = True
        if line.startswith("cohortroute ") and not exported and "--store" not in line:
            missing.append(line)
    return missing


@pytest.mark.parametrize("block", _cookbook_blocks())
def test_every_cookbook_block_exports_the_store_before_the_cli(block: str) -> None:
    assert _cli_without_store(block.splitlines()) == []


@pytest.mark.parametrize("path", EXAMPLES)
def test_every_example_usage_exports_the_store_before_the_cli(path: str) -> None:
    assert _cli_without_store(_docstring(path).splitlines()) == []


def test_the_check_catches_a_store_set_for_the_server_only() -> None:
    lines = ["COHORTROUTE_STORE=sqlite:///x.db uvicorn app:app", "cohortroute pin qa v2"]
    assert _cli_without_store(lines) == ["cohortroute pin qa v2"]


def _django_block() -> list[str]:
    (block,) = [b for b in _cookbook_blocks() if "setup_tenants" in b]
    return [line for line in block.splitlines() if line.strip()]


@pytest.mark.e2e
def test_the_django_block_runs_as_written_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    for line in _django_block():
        if line.startswith("gunicorn"):
            break  # serving is tests/test_cookbook_django.py's part
        words = shlex.split(line)
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
            continue
        program = {"python": sys.executable, "cohortroute": bin_path("cohortroute")}[words[0]]
        done = subprocess.run(
            [program, *words[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"

    data = tmp_path / env["SHOP_DATA"]
    for tenant, applied in (("acme", 2), ("globex", 1)):
        with sqlite3.connect(data / f"{tenant}.sqlite3") as db:
            names = [row[0] for row in db.execute("SELECT name FROM django_migrations")]
        db.close()
        assert len([name for name in names if name[:4].isdigit()]) == applied, (tenant, names)
    for tenant, version in (("acme", "2026.12"), ("globex", "2026.11")):
        explained = subprocess.run(
            [bin_path("cohortroute"), "explain", tenant],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert explained.stdout.startswith(f"{tenant} -> {version} "), explained.stdout

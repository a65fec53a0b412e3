"""A failing assignment backend on the command line: ``explain`` and ``status --assign`` warn in
one line (``explain`` shows the error in its hints and ``--json`` in ``errors``), while routers
still log the first failure with its traceback; ``check_assignment_backend`` fails with an
AssertionError naming the backend, the query and the error."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cohortroute import Assignment, CohortRouter, Query, open_store
from cohortroute._clock import ManualClock
from cohortroute.testing import check_assignment_backend

from .apps import wsgi_version
from .cli_inproc import cli, isolate

ROUTING = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Billing:
    name: str = "billing"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query, /):
        raise RuntimeError("billing is down")


backends = [Billing()]
"""


class Billing:
    name = "billing"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        raise RuntimeError("billing is down")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store with v1 (the default), v2 and acme; the failing backend in routing.py next to it."""
    isolate(monkeypatch)
    (tmp_path / "routing.py").write_text(ROUTING)
    address = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(address)
    store.register_versions(["v1", "v2"], "v1", actor="router")
    store.register_tenants(["acme"])
    store.close()
    return address


def console(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m cohortroute --store URL ARGS`` in ``folder``: stderr as a user sees it."""
    env = {**os.environ, "USER": "tester"}
    env.pop("COHORTROUTE_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "cohortroute", "--store", url, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


WARNING = (
    "cohortroute: assignment backend 'billing' failed (RuntimeError: billing is down); its "
    "opinion is skipped and the chain goes on.\n"
)


def test_explain_and_status_warn_in_one_line(tmp_path: Path, url: str) -> None:
    explained = console(tmp_path, url, "explain", "acme", "--assign", "routing:backends")
    assert explained.returncode == 0, explained.stderr
    assert explained.stderr == WARNING
    assert "assignment backend billing: RuntimeError: billing is down; skipped" in explained.stdout
    status = console(tmp_path, url, "status", "--assign", "routing:backends")
    assert status.returncode == 0, status.stderr
    assert status.stderr == WARNING


def test_explain_json_carries_the_backend_and_the_errors(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        failing = json.loads(
            cli("explain", "acme", "--json", "--assign", "routing:backends", store=url).out
        )
    finally:
        sys.modules.pop("routing", None)
    assert (failing["backend"], failing["errors"]) == (
        "default",
        ["billing: RuntimeError: billing is down"],
    )
    store = open_store(url)
    store.pin("acme", "v2")
    store.close()
    pinned = json.loads(cli("explain", "acme", "--json", store=url).out)
    assert (pinned["backend"], pinned["errors"]) == ("pin", [])


def test_a_router_still_logs_the_first_failure_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = CohortRouter(
        {"v1": wsgi_version("v1")},
        domains=["example.com"],
        assign=[Billing()],
        clock=ManualClock(),
        register_tenants=False,
    )
    with caplog.at_level(logging.WARNING, logger="cohortroute.assign.chain"):
        assert router.explain("acme").errors == ("billing: RuntimeError: billing is down",)
    (record,) = [r for r in caplog.records if "'billing' failed" in r.getMessage()]
    assert record.exc_info is not None and "router.status()" in record.getMessage()
    router.close()


def test_check_assignment_backend_names_the_backend_the_query_and_the_error() -> None:
    with pytest.raises(AssertionError) as failed:
        check_assignment_backend(Billing(), tenants=["acme"], versions=["v1", "v2"])
    message = str(failed.value)
    assert message.startswith(
        "assignment backend 'billing' raised RuntimeError: billing is down when asked about "
        "'acme' (default 'v1', no rollout)"
    )
    assert isinstance(failed.value.__cause__, RuntimeError)

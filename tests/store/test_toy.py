"""A user's own store plugs in: the toy:// store from examples/ passes the contract and serves."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.store import Store, known_schemes, open_store
from cohortroute.testing.contract import StoreContract
from tests.apps import wsgi_version

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from toy_store import ToyStore


class TestToyStore(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Iterator[Callable[[], Store]]:
        counter = iter(range(1_000_000))

        def make() -> Store:
            return open_store(f"toy://{tmp_path}/state-{next(counter)}.json")

        yield make


def test_the_scheme_is_registered_by_the_class_statement() -> None:
    assert "toy" in known_schemes()
    assert isinstance(open_store("toy:///tmp/x.json"), ToyStore)


def test_a_router_runs_on_the_toy_store(tmp_path: Path) -> None:
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=f"toy://{tmp_path}/state.json",
    )
    router.store.pin("acme", "v2")
    body = Client(router).get("/", headers={"Host": "acme.example.com"}).get_data(as_text=True)
    assert body.startswith("v2 acme pin")
    # The state is in the file, so another store object (another process) sees it too.
    assert open_store(f"toy://{tmp_path}/state.json").tenant("acme").pin == "v2"


def test_the_cli_finds_a_custom_store_through_cohortroute_plugins(tmp_path: Path) -> None:
    import os
    import subprocess

    url = f"toy://{tmp_path}/state.json"
    CohortRouter({"v1": wsgi_version("v1"), "v2": wsgi_version("v2")}, domains=["x.org"], store=url)
    examples = Path(__file__).resolve().parents[2] / "examples"
    env = dict(os.environ, COHORTROUTE_PLUGINS="toy_store", PYTHONPATH=str(examples))
    command = [sys.executable, "-m", "cohortroute", "--store", url]
    done = subprocess.run([*command, "pin", "acme", "v2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert open_store(url).tenant("acme").pin == "v2"
    env.pop("COHORTROUTE_PLUGINS")
    failed = subprocess.run([*command, "status"], env=env, capture_output=True, text=True)
    assert failed.returncode == 2 and "COHORTROUTE_PLUGINS" in failed.stderr

"""``--assign MODULE:ATTR``: the rollout commands decide with the routers' custom backends.

Without it the command line knows only pins, tag rules and the rollout; with it ``rollout run``
migrates exactly the tenants routers with those backends put on the candidate, and ``rollout
preview`` shows who they move.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute import open_store
from cohortroute.bucketing import bucket
from cohortroute.decision import decide
from cohortroute.rollout import RolloutController
from cohortroute.store import Store

from .cli_inproc import Result, cli, isolate
from .migration_app import read_schema

OLD, NEW = "2026.11", "2026.12"
TENANTS = [f"shop{i:02d}" for i in range(30)]
SALT = "fixed"
INSIDE = [t for t in TENANTS if bucket(SALT, t) < 5000]
OUTSIDE = [t for t in TENANTS if t not in INSIDE]
EARLY, LATE = OUTSIDE[:3], INSIDE[:3]

MIGRATIONS = """
import os
from pathlib import Path
from tests.migration_app import make_migrations

migrations = make_migrations(Path(os.environ["DATA"]))
migrations.version("2026.11", 1)
migrations.version("2026.12", 3)
"""

ROUTING = f"""
from cohortroute import Assignment, Chain

class Listed:
    name, ttl, timeout = "listed", None, None

    def assign(self, query):
        if query.rollout is None:
            return None
        if query.tenant in {EARLY!r}:
            return Assignment(query.rollout.candidate, "beta", "beta customers first")
        if query.tenant in {LATE!r}:
            return Assignment(query.default, "region", "this region goes last")
        return None

backends = [Listed()]
chain = Chain(backends)
def make(): return backends
not_backends = 42
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app's folder as the current directory: its migrations and its routing backends."""
    isolate(monkeypatch)
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "app"
    (folder / "data").mkdir(parents=True)
    (folder / "assign_migrations.py").write_text(MIGRATIONS)
    (folder / "assign_routing.py").write_text(ROUTING)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DATA", str(folder / "data"))
    yield folder
    for name in ("assign_migrations", "assign_routing"):
        sys.modules.pop(name, None)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    handle = open_store(url)
    handle.register_versions([OLD, NEW], OLD, actor="router")
    handle.register_tenants(TENANTS)
    yield handle
    handle.close()


def run(*args: str, url: str, code: int = 0) -> Result:
    result = cli(*args, store=url)
    assert result.code == code, result.out + result.err
    assert "Traceback" not in result.err
    return result


def served(store: Store) -> set[str]:
    """The tenants a router with the backends serves the candidate."""
    sys.path.insert(0, ".")
    from assign_routing import chain  # type: ignore[import-not-found]

    policy = store.policy()
    return {t for t in TENANTS if decide(policy, store.tenant(t), OLD, chain=chain).version == NEW}


def test_rollout_run_with_assign_migrates_whom_the_routers_put_on_the_candidate(
    url: str, store: Store, app_dir: Path
) -> None:
    app = ("--app", "assign_migrations:migrations")
    assign = ("--assign", "assign_routing:backends")
    run("rollout", "start", NEW, "--percent", "0", "--salt", SALT, *app, *assign, url=url)
    runner = ("rollout", "run", "--once", "--json", "--drain", "0", *app, *assign)
    early = json.loads(run(*runner, url=url).out)
    assert early["ok"] and sorted(early["moved"]) == sorted(EARLY)  # sent early at 0 %

    reached = [t for t in INSIDE if t not in LATE]
    preview = json.loads(
        run("rollout", "preview", "--percent", "50", "--json", *assign, url=url).out
    )
    assert sorted(preview["migrate"]) == reached
    blind = json.loads(run("rollout", "preview", "--percent", "50", "--json", url=url).out)
    assert sorted(blind["migrate"]) == INSIDE  # the built-ins only: what the CLI knew before
    run("rollout", "set", "50", *assign, url=url)

    done = json.loads(run(*runner, url=url).out)
    assert done["ok"] and sorted(done["moved"]) == reached
    wanted = sorted(EARLY + reached)
    assert served(store) == set(wanted)
    assert all(read_schema(app_dir / "data", t) == 1 for t in LATE)  # held back: untouched
    assert all(read_schema(app_dir / "data", t) == 3 for t in wanted)
    # The documented limitation: without the backends, run would migrate the held-back tenants.
    assert RolloutController(store).pending() == sorted(LATE)


@pytest.mark.parametrize("attr", ["backends", "chain", "make"])
def test_assign_takes_a_list_a_chain_or_a_callable(
    url: str, store: Store, app_dir: Path, attr: str
) -> None:
    run("rollout", "start", NEW, "--percent", "0", "--salt", SALT, url=url)
    preview = json.loads(
        run(
            "rollout",
            "preview",
            "--percent",
            "50",
            "--json",
            "--assign",
            f"assign_routing:{attr}",
            url=url,
        ).out
    )
    assert sorted(preview["moves"]) == [t for t in INSIDE if t not in LATE]


def test_assign_usage_errors(url: str, store: Store, app_dir: Path) -> None:
    run("rollout", "start", NEW, "--percent", "10", url=url)
    for spec, message in [
        ("nocolon", "--assign wants MODULE:ATTR"),
        ("nope_mod:x", "cannot import 'nope_mod'"),
        ("assign_routing:missing", "has no attribute 'missing'"),
        ("assign_routing:not_backends", "is a int, not assignment backends or a Chain"),
    ]:
        err = run("rollout", "preview", "--assign", spec, url=url, code=2).err
        assert message in err

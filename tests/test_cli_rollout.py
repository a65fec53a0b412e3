"""The rollout and tenants commands against a temporary SQLite store, run in-process.

One test starts a real process: ``rollout run`` looping until the rollout ends, finalized from
outside while it runs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute import open_store
from cohortroute.cli.render import ProgressBar
from cohortroute.decision import decide
from cohortroute.errors import ConflictError
from cohortroute.rollout import RolloutController, TenantResult
from cohortroute.store import Store

from .cli_inproc import cli
from .migration_app import read_schema

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = "2026.11", "2026.12"
TENANTS = [f"shop{i:02d}" for i in range(40)]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """USER=tester, no store from the environment, and sys.path restored after ``--app``."""
    monkeypatch.delenv("COHORTROUTE_STORE", raising=False)
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setattr(sys, "path", list(sys.path))


def inproc(code: int, *args: str, url: str) -> tuple[str, str]:
    """Run ``cohortroute --store URL ARGS`` in this process; it must exit with ``code``."""
    result = cli(*args, store=url)
    assert result.code == code, result.out + result.err
    assert "Traceback" not in result.err
    return result.out, result.err


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    handle = open_store(url)
    handle.register_versions([OLD, NEW], OLD, actor="router")
    RolloutController(handle).register(TENANTS)
    yield handle
    handle.close()


def on_new(store: Store) -> set[str]:
    policy = store.policy()
    return {t for t in TENANTS if decide(policy, store.tenant(t), OLD).version == NEW}


# --- the registry ---------------------------------------------------------------------------


def test_tenants_import_and_add(url: str, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "tenants.csv"
    source.write_text("tenant,tags\nacme,beta\nglobex\nshop00\n")
    out = inproc(0, "tenants", "import", str(source), url=url)[0]
    assert out.startswith("imported 2 new tenants")
    assert store.tenant("acme").tags == {"beta"}
    out = inproc(0, "tenants", "add", "initech", "--tag", "internal", url=url)[0]
    assert out.startswith("registered initech")
    assert "already registered" in inproc(0, "tenants", "add", "initech", url=url)[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO("hooli\numbrella\n"))
        assert "imported 2 new tenants" in inproc(0, "tenants", "import", "-", url=url)[0]
    bad = tmp_path / "bad.txt"
    bad.write_text("ok-tenant\nnot a tenant\n")
    assert "line 2" in inproc(2, "tenants", "import", str(bad), url=url)[1]
    assert "no such file" in inproc(2, "tenants", "import", "missing.csv", url=url)[1]


# --- plans, preview, halt, ratchet, rollback, finalize -----------------------------------------


def test_a_planned_rollout_from_the_command_line(url: str, store: Store) -> None:
    out = inproc(0, "rollout", "start", NEW, "--plan", "10,50,100", "--every", "2h", url=url)[0]
    assert f"started the rollout of {NEW} at 10%" in out
    rollout = store.policy().rollout
    assert rollout is not None and rollout.plan == (1000, 5000, 10_000) and rollout.every == 7200

    preview = json.loads(inproc(0, "rollout", "preview", "--json", url=url)[0])
    expected = RolloutController(store).preview()
    assert preview["moves"] == list(expected.moves) and preview["count"] == expected.count
    assert (preview["from_percent"], preview["to_percent"]) == (10.0, 50.0)  # percent, as numbers
    text = inproc(0, "rollout", "preview", url=url)[0]
    assert text.startswith(f"10% -> 50%: {expected.count} of {len(TENANTS)} registered")

    refused = inproc(2, "rollout", "advance", url=url)[1]
    assert "minimum dwell is 2h00m" in refused and "--force" in refused
    before = on_new(store)
    assert "now at 50% (step 2 of 3" in inproc(0, "rollout", "advance", "--force", url=url)[0]
    assert on_new(store) - before == set(preview["moves"])

    assert "halted at 50%" in inproc(0, "rollout", "halt", "--reason", "errors up", url=url)[0]
    assert "resume" in inproc(2, "rollout", "advance", "--force", url=url)[1]
    assert "continues at 50%" in inproc(0, "rollout", "resume", url=url)[0]

    at_50 = on_new(store)
    inproc(0, "rollout", "set", "5", "--settle", "0", url=url)[0]
    assert on_new(store) == at_50  # the ratchet: lowering moves nobody back
    kept = next(t for t in sorted(at_50) if store.tenant(t).ratchet == NEW)
    assert "ratchet" in inproc(0, "explain", kept, url=url)[0]

    out = inproc(0, "rollout", "rollback", "--tenant", kept, url=url)[0]
    assert "1 moved" in out and kept not in on_new(store)
    assert "rolled back" in inproc(0, "explain", kept, url=url)[0]

    out = inproc(0, "rollout", "finalize", url=url)[0]
    assert f"{NEW} is the default now" in out
    policy = store.policy()
    assert policy.default == NEW and policy.rollout is None
    assert on_new(store) == set(TENANTS)
    history = json.loads(inproc(0, "history", kept, "--json", url=url)[0])["entries"]
    assert {"ratchet", "rollback", "finalize-unhold"} <= {e["action"] for e in history}


def test_rollout_rollback_everybody(url: str, store: Store) -> None:
    inproc(0, "rollout", "start", NEW, "--percent", "50", url=url)[0]
    out = inproc(0, "rollout", "rollback", url=url)[0]
    assert "moved" in out and "ended" in out
    assert store.policy().rollout is None and on_new(store) == set()


def test_usage_errors_exit_2(url: str, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's own message goes to the err stream given to run(), not to sys.stderr.
    assert "like 2h" in inproc(2, "rollout", "start", NEW, "--every", "2 hours", url=url)[1]
    assert capsys.readouterr().err == ""
    inproc(2, "rollout", "start", NEW, "--plan", "5,x", url=url)
    assert "strictly up" in inproc(2, "rollout", "start", NEW, "--plan", "5,1", url=url)[1]
    assert "no rollout is running" in inproc(2, "rollout", "advance", url=url)[1]
    assert "MODULE:ATTR" in inproc(2, "rollout", "run", "--app", "nocolon", url=url)[1]
    assert "cannot import" in inproc(2, "rollout", "run", "--app", "nope_mod:x", url=url)[1]


# --- migrations from the command line -----------------------------------------------------------

MODULE = """
from pathlib import Path
import os
from tests.migration_app import make_migrations

migrations = make_migrations(Path(os.environ["DATA"]), fail=frozenset({"shop07"}))
migrations.version("2026.11", 1)
migrations.version("2026.12", 3)
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app's folder as the current directory, where ``--app`` finds its migrations."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "notes_migrations.py").write_text(MODULE)
    (folder / "data").mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DATA", str(folder / "data"))
    yield folder
    for name in ("notes_migrations", "ok_migrations"):  # each test imports its own copy
        sys.modules.pop(name, None)


def test_gated_rollout_run_rollback_and_finalize(url: str, store: Store, app_dir: Path) -> None:
    app = ["--app", "notes_migrations:migrations"]
    out = inproc(0, "rollout", "start", NEW, "--percent", "100", *app, url=url)[0]
    assert "needs a data migration" in out

    blind = inproc(2, "rollout", "run", "--once", url=url)[1]
    assert "rollout run --app MODULE:ATTR`, naming the Migrations" in blind

    done = inproc(1, "rollout", "run", "--once", "--drain", "0", *app, url=url)[0]
    assert "1 failed, 39 moved -- FAILED" in done
    assert "shop07: failed (2026.11 -> 2026.12): step app 2 -> 3 failed" in done
    assert read_schema(app_dir / "data", "shop07") == 1
    assert on_new(store) == set(TENANTS) - {"shop07"}

    again = json.loads(
        inproc(0, "rollout", "run", "--once", "--json", "--drain", "0", *app, url=url)[0]
    )
    assert again["ok"] and again["moved"] == []

    out = inproc(0, "rollout", "rollback", "--tenant", "shop01", "--drain", "0", *app, url=url)[0]
    assert "1 moved" in out and read_schema(app_dir / "data", "shop01") == 1

    final = inproc(1, "rollout", "finalize", "--drain", "0", "--settle", "0", *app, url=url)[0]
    assert "shop07" in final and "finalize again" in final
    assert store.policy().default == OLD


def test_rollout_run_loops_until_the_rollout_ends(url: str, store: Store, app_dir: Path) -> None:
    (app_dir / "ok_migrations.py").write_text(MODULE.replace('{"shop07"}', "()"))
    app = ["--app", "ok_migrations:migrations"]
    inproc(0, "rollout", "start", NEW, "--plan", "10,100", *app, url=url)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    loop = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cohortroute",
            "--store",
            url,
            "rollout",
            "run",
            *app,
            "--interval",
            "0.1",
            "--drain",
            "0",
        ],
        cwd=app_dir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not on_new(store) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert on_new(store), "the loop migrated the first step's tenants"
        controller = RolloutController(store, drain=0)
        controller.advance()  # the running loop picks up the next step by itself
        while len(on_new(store)) < len(TENANTS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert on_new(store) == set(TENANTS)
        # The loop ends by itself when the rollout ends.
        inproc(0, "rollout", "finalize", "--drain", "0", "--settle", "0", *app, url=url)
        out, _ = loop.communicate(timeout=20)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.communicate()
    assert loop.returncode == 0 and "the rollout ended" in out


def test_the_progress_bar_draws_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    bar = ProgressBar(err, 2, "migrating")
    bar(TenantResult("a", "moved"))
    bar(TenantResult("b", "failed", error="boom"))
    assert err.getvalue().endswith("[##############################] 2/2, 1 failed\n")
    quiet = io.StringIO()
    ProgressBar(quiet, 2, "migrating")(TenantResult("a", "moved"))
    assert quiet.getvalue() == ""


def test_in_process_entry_point_reports_conflicts_as_usage_errors(url: str, store: Store) -> None:
    assert "no rollout is running" in inproc(2, "rollout", "halt", url=url)[1]


# --- rollout status, imports that change tags, advice in the CLI's words ------------------------


def test_rollout_status_is_the_controllers_status(url: str, store: Store) -> None:
    out = inproc(0, "rollout", "status", url=url)[0]
    assert "rollout:   none" in out and f"{len(TENANTS)} registered" in out
    assert "rollout start VERSION" in out
    inproc(0, "rollout", "start", NEW, "--percent", "12.5", url=url)
    inproc(0, "rollout", "halt", "--reason", "errors up", url=url)
    out = inproc(0, "rollout", "status", url=url)[0]
    assert "HALTED: errors up" in out and "rollout resume" in out
    data = json.loads(inproc(0, "rollout", "status", "--json", url=url)[0])
    assert data["rollout"]["percent"] == 12.5 and data["rollout"]["halted"] is True
    assert data["tenants"]["registered"] == len(TENANTS) and data["failed"] == {}
    assert data["default"] == OLD


def test_import_can_replace_tags_and_every_change_is_in_history(
    url: str, store: Store, tmp_path: Path
) -> None:
    store.tag("shop01", "legacy")
    source = tmp_path / "tags.csv"
    source.write_text("shop01,beta\nshop02\nnewshop,pro\n")
    out = inproc(0, "tenants", "import", str(source), url=url)[0]
    assert out.startswith("imported 1 new tenants; tags changed on 2 (2 added, 0 removed)")
    assert store.tenant("shop01").tags == {"legacy", "beta"}  # without the flag: only added
    out = inproc(0, "tenants", "import", "--replace-tags", str(source), url=url)[0]
    assert out.startswith("imported 0 new tenants; tags changed on 1 (0 added, 1 removed)")
    assert store.tenant("shop01").tags == {"beta"} and store.tenant("newshop").tags == {"pro"}
    history = inproc(0, "history", "shop01", url=url)[0]
    assert "tags-import" in history and "beta,legacy => beta" in history
    again = inproc(0, "tenants", "import", "--replace-tags", str(source), url=url)[0]
    assert "already registered with these tags; nothing changed" in again
    controller = RolloutController(store)
    source.write_text("shop01\n")
    assert controller.import_tenants(source, replace_tags=True) == 0
    assert store.tenant("shop01").tags == frozenset()


def test_rollback_of_a_tenant_the_store_does_not_know_exits_2(url: str, store: Store) -> None:
    inproc(0, "rollout", "start", NEW, "--percent", "50", url=url)
    _, err = inproc(2, "rollout", "rollback", "--tenant", "nobodyhere", url=url)
    assert "knows no tenant nobodyhere" in err and "explain nobodyhere" in err


def test_errors_say_the_cli_words_and_python_says_its_own(url: str, store: Store) -> None:
    inproc(0, "rollout", "start", NEW, "--plan", "1,5", "--every", "1h", url=url)
    _, err = inproc(2, "rollout", "advance", url=url)
    assert f"run `cohortroute --store {url} rollout advance --force`" in err
    assert "force=True" not in err
    with pytest.raises(ConflictError, match=r"call advance\(force=True\)") as raised:
        RolloutController(store).advance()
    assert "--force" not in str(raised.value)
    inproc(0, "rollout", "advance", "--force", url=url)
    _, err = inproc(2, "rollout", "preview", url=url)
    assert "rollout preview --percent 50`" in err and "preview(" not in err


def test_a_timed_plan_without_its_timer_is_refused_in_cli_words(url: str, store: Store) -> None:
    _, err = inproc(2, "rollout", "start", NEW, "--auto", "--plan", "1,5", url=url)
    assert "--every DURATION" in err and "every=" not in err

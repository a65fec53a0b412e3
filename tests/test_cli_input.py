"""What an operator (or an attacker) types: numbers that are not numbers, bytes that are not
UTF-8, files that are not text, and stored strings that would drive the terminal.

Each case exits 2 with one line saying what to do -- before anything is written -- or, for
output, prints the text escaped and cut to a readable length.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute import open_store
from cohortroute.cli import build_parser
from cohortroute.cli.context import Context
from cohortroute.cli.loader import controller_for
from cohortroute.errors import ValidationError
from cohortroute.policy import parse_percent
from cohortroute.rollout import RolloutController, parse_duration
from cohortroute.store import Store

from .cli_inproc import cli, fails, isolate, ok, sqlite_url

OLD, NEW = "2026.11", "2026.12"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    handle = open_store(url)
    handle.register_versions([OLD, NEW], OLD, actor="router")
    RolloutController(handle).register(["acme", "globex"])
    handle.start_rollout(NEW, 10, actor="setup")
    yield handle
    handle.close()


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("rollout", "run", "--once", "--drain", "nan"),
        ("rollout", "run", "--once", "--drain", "-1"),
        ("rollout", "run", "--once", "--drain", "inf"),
        ("rollout", "run", "--once", "--drain", "1e400"),
        ("rollout", "run", "--once", "--drain", "\uff15"),
        ("rollout", "run", "--once", "--settle", "NaN"),
        ("rollout", "run", "--interval", "-1"),
        ("rollout", "run", "--interval", "0"),
        ("rollout", "run", "--once", "--lease", "0"),
        ("rollout", "run", "--once", "--lease", "inf"),
        ("rollout", "run", "--once", "--max-failures", "-1"),
        ("rollout", "run", "--once", "--concurrency", "100000"),
        ("rollout", "finalize", "--drain", "nan"),
        ("rollout", "set", "\uff15"),
        ("rollout", "set", "nan"),
        ("rollout", "preview", "--percent", "\u0665"),
        ("history", "--limit", "99999999999999999999999"),
        ("history", "--limit", "\uff15"),
        ("tenants", "import", "-", "--batch-size", "0"),
        ("demo", "--port", "\uff18\uff10\uff10\uff10"),
    ],
)
def test_numbers_that_are_not_numbers_exit_2_before_anything_is_written(
    url: str, store: Store, args: tuple[str, ...]
) -> None:
    revision = store.revision()
    err = fails(2, *args, store=url)
    assert "error: argument" in err
    assert store.revision() == revision


def test_every_that_overflows_to_infinity_is_refused(url: str, store: Store) -> None:
    fails(2, "rollout", "start", NEW, "--every", "9" * 400, "--plan", "1,5", store=url)
    with pytest.raises(ValidationError):
        parse_duration("9" * 400)
    with pytest.raises(ValidationError):
        parse_duration(float("nan"))
    with pytest.raises(ValidationError):
        parse_duration("\uff12h")
    assert parse_duration("1h30m") == 5400


def test_percentages_take_ascii_digits_only() -> None:
    for text in ("\uff15", "\u0665", "1\u0660", "\uff15%"):
        with pytest.raises(ValidationError):
            parse_percent(text)
    assert parse_percent("12.5%") == 1250


def test_lease_and_drain_reach_the_controller(url: str, store: Store) -> None:
    args = build_parser().parse_args(["rollout", "run", "--lease", "15", "--drain", "0.5"])
    ctx = Context(url, None, io.StringIO(), io.StringIO())
    try:
        controller = controller_for(args, ctx)
        assert (controller.lease_ttl, controller.drain) == (15.0, 0.5)
    finally:
        ctx.close()


# --- text that is not text ----------------------------------------------------------------------


def test_an_actor_that_is_not_utf8_exits_2(url: str, store: Store) -> None:
    revision = store.revision()
    err = fails(2, "--actor", "bad\udcff", "pin", "acme", NEW, store=url)
    assert "not valid UTF-8" in err
    assert "control characters" in fails(2, "--actor", "a\x1b[2Jb", "tag", "acme", "x", store=url)
    assert "at most 200" in fails(2, "--actor", "a" * 5000, "tag", "acme", "x", store=url)
    assert "not valid UTF-8" in fails(2, "rollout", "halt", "--reason", "\udcff", store=url)
    assert store.revision() == revision


def test_history_escapes_control_characters_and_cuts_long_fields(url: str, store: Store) -> None:
    store.tag("acme", "beta", actor="evil\x1b[31m\nrow")
    store.tag("globex", "beta", actor="x" * 120_000)
    out = ok("history", store=url)
    assert "\x1b" not in out and "evil\\x1b[31m\\nrow" in out
    assert len(out) < 2000 and "(120000 characters)" in out
    assert len(out.splitlines()) == len(store.history(limit=20)) + 1


# --- files ----------------------------------------------------------------------------------


def test_import_of_a_file_that_is_not_utf8_text_exits_2(
    url: str, store: Store, tmp_path: Path
) -> None:
    revision = store.revision()
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("acme\ncafé,beta\n".encode("latin-1"))
    assert "is not UTF-8 text (line 2)" in fails(2, "tenants", "import", str(latin), store=url)
    binary = tmp_path / "tenants.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    fails(2, "tenants", "import", str(binary), store=url)
    assert store.revision() == revision


def test_import_cuts_the_offending_line(url: str, store: Store, tmp_path: Path) -> None:
    long_name = tmp_path / "long.txt"
    long_name.write_text("acme\n" + "x" * 1_000_000 + "\n")
    err = fails(2, "tenants", "import", str(long_name), store=url)
    assert "line 2" in err and len(err) < 500
    long_cell = tmp_path / "cell.csv"
    long_cell.write_text("acme," + "y" * 200_000 + "\n")
    err = fails(2, "tenants", "import", str(long_cell), store=url)
    assert "line 1" in err and len(err) < 500


def test_an_empty_file_imports_nothing(url: str, store: Store, tmp_path: Path) -> None:
    assert "lists no tenants" in ok("tenants", "import", "/dev/null", store=url)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "lists no tenants" in ok("tenants", "import", str(empty), store=url)
    assert "no such file" in fails(2, "tenants", "import", str(tmp_path / "nope"), store=url)
    assert "is a directory" in fails(2, "tenants", "import", str(tmp_path), store=url)


def test_nothing_here_prints_a_traceback(url: str, store: Store) -> None:
    result = cli("history", "--limit", "1" + "0" * 30, store=url)
    assert result.code == 2 and "Traceback" not in result.err

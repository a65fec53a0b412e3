"""Run the ``cohortroute`` command line in this process, for the CLI tests.

:func:`cohortroute.cli.run` is the code path of the console script with its own output streams,
so a test pays no interpreter start-up. The tests that need a real process (the console script,
exit codes of ``python -m cohortroute``, the demo, a long-running loop) start one themselves.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohortroute.cli import run


@dataclass(frozen=True)
class Result:
    """What one command did: its exit code, standard output and standard error."""

    code: int
    out: str
    err: str


def cli(*args: str, store: str | None = None) -> Result:
    """Run ``cohortroute [--store URL] ARGS`` in-process."""
    out, err = io.StringIO(), io.StringIO()
    prefix = ["--store", store] if store is not None else []
    code = run([*prefix, *args], out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args: str, store: str) -> str:
    """Run a command that must succeed quietly; return its standard output."""
    result = cli(*args, store=store)
    assert result.code == 0, result.err
    assert result.err == ""
    return result.out


def fails(code: int, *args: str, store: str | None = None) -> str:
    """Run a command that must fail with ``code`` and a one-line message; return stderr."""
    result = cli(*args, store=store)
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.err
    assert result.out == ""
    return result.err


def isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every CLI test runs under: USER=tester and no store from the environment."""
    monkeypatch.delenv("COHORTROUTE_STORE", raising=False)
    monkeypatch.setenv("USER", "tester")


def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite store in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'state.db'}"

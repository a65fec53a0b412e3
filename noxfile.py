"""Developer sessions: tests, tests_services, lint, typing, bench and demo (`nox -s NAME`)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, extra: str) -> None:
    session.install("-e", f".[{extra}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite; Redis/PostgreSQL tests skip when their servers are not running."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def tests_services(session: nox.Session) -> None:
    """Only the tests that need Redis and PostgreSQL, which must be running (CI=true)."""
    _install(session, "test")
    session.run("pytest", "-m", "redis or postgres", *session.posargs, env={"CI": "true"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, check and format."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy strict on src/."""
    _install(session, "dev")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks: hot path ratios and cold decisions per store."""
    _install(session, "test")
    session.run("python", "benchmarks/hot_path.py", *session.posargs)
    session.run("python", "benchmarks/cold_decision.py", "--services")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demo on the embedded SQLite store."""
    _install(session, "test")
    session.run("cohortroute", "demo", *session.posargs)

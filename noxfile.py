"""Developer sessions: tests, tests_services, conformance, lint, typing, docs, bench and demo
(`nox -s NAME`)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import nox

nox.options.sessions = ["tests", "conformance", "lint", "typing"]
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


def _passed(session: nox.Session, report: Path, wrapped: bool) -> tuple[int, int]:
    """Run the conformance tests (bare or through the router); (passed, collected)."""
    env = {"COHORTROUTE_CONFORMANCE": "wrapped" if wrapped else "bare"}
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "tests/conformance",
        env=env,
        success_codes=[0, 1],
    )
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None, f"no test suite in {report}"
    total = int(suite.get("tests", 0))
    failed = sum(int(suite.get(key, 0)) for key in ("failures", "errors", "skipped"))
    return total - failed, total


@nox.session
def conformance(session: nox.Session) -> None:
    """A FastAPI app's own tests, bare and with the app mounted in a CohortRouter: the same
    tests must pass both ways (lifespan state, bodies, streaming, websockets, errors)."""
    _install(session, "test")
    reports = Path(session.create_tmp())
    bare = _passed(session, reports / "bare.xml", wrapped=False)
    wrapped = _passed(session, reports / "wrapped.xml", wrapped=True)
    session.log(f"passed: bare {bare[0]}/{bare[1]}, through the router {wrapped[0]}/{wrapped[1]}")
    if bare[0] == 0 or bare != wrapped:
        session.error("the router changed what the app's tests see; compare the two runs above")


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


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors (site/); `nox -s docs -- serve` previews it."""
    _install(session, "docs")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=_QUIET)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=_QUIET)


# Material prints a banner about its successor on every build; it is not a warning of ours.
_QUIET = {"NO_MKDOCS_2_WARNING": "1"}

"""The CLI and the store it is pointed at: it never creates one, and says what it was given.

A mistyped ``--store sqlite:///typo.db`` used to create a new, empty store silently -- for read
verbs too -- that no router ever reads. Now every verb refuses a store that does not exist,
says so and how to create one; a bare file path gets a "did you mean" hint, and a malformed URL
is a one-line error (exit 2), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cohortroute.errors import StoreUnavailableError
from cohortroute.store import open_store
from tests.cli_inproc import cli

pytest.register_assert_rewrite("tests.services")
from tests.services import SHARED_BACKENDS, with_query  # noqa: E402

pytest_plugins = ("tests.services",)

READS: list[tuple[str, ...]] = [("status",), ("explain", "acme"), ("history",), ("versions",)]
WRITES: list[tuple[str, ...]] = [
    ("pin", "acme", "v1"),
    ("tag", "acme", "beta"),
    ("rule", "beta", "v1"),
]


@pytest.mark.parametrize("args", READS + WRITES, ids=lambda args: args[0])
def test_no_verb_creates_a_store(args: tuple[str, ...], tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = cli(*args, store=f"sqlite:///{typo}")
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert f"there is no cohortroute store at {typo}" in result.err
    assert "?mode=rwc" in result.err  # how to create one
    assert list(tmp_path.iterdir()) == []


def test_a_store_is_created_when_the_url_asks_for_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    result = cli("tag", "acme", "beta", store=f"sqlite:///{path}?mode=rwc")
    assert result.code == 0, result.err
    store = open_store(f"sqlite:///{path}", create=False)
    assert store.tenant("acme").tags == {"beta"}
    store.close()


def test_an_existing_store_is_read_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    store.close()
    result = cli("status", store=url)
    assert result.code == 0, result.err
    assert "v1 (default)" in result.out


@pytest.mark.parametrize("given", ["state.db", "/srv/app/state.db", "./data/state.db"])
def test_a_bare_path_gets_a_did_you_mean_hint(given: str) -> None:
    result = cli("status", store=given)
    assert result.code == 2
    assert f"did you mean 'sqlite:///{given}'?" in result.err


@pytest.mark.parametrize(
    "url",
    [
        "redis://[::1",
        "redis://:hunter2@[::1:6379/0",
        "postgresql://[bad]:x/",
        "postgresql://u:hunter2@[::1]:99999/db",
        "redis://h:port/0",
        "rediss://[fe80::1/0",
    ],
)
def test_malformed_urls_with_brackets_are_usage_errors(url: str) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    result = cli("status", store=url)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("cohortroute: error: malformed")
    assert "hunter2" not in result.err


# --- the network stores: a mistyped prefix or schema is not a new store either -------------------


def nothing_stored(url: str, request: pytest.FixtureRequest) -> bool:
    """True when the server holds nothing for the store at ``url`` (no key, no schema)."""
    where = dict(parse_qsl(urlsplit(url).query))
    if url.startswith("redis"):
        admin: Any = request.getfixturevalue("redis_admin")
        return not list(admin.scan_iter(match=where["prefix"] + "*"))
    admin = request.getfixturevalue("postgres_admin")
    found = admin.execute(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (where["schema"],)
    )
    return found.fetchone() is None


@pytest.mark.parametrize("backend_url", SHARED_BACKENDS, indirect=True)
@pytest.mark.parametrize("args", [("status",), ("tag", "acme", "beta")], ids=lambda a: a[0])
def test_no_verb_creates_a_network_store(
    backend_url: str, args: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    result = cli(*args, store=backend_url)
    assert result.code == 2, result.out + result.err
    assert "there is no cohortroute store at" in result.err and "?mode=rwc" in result.err
    assert nothing_stored(backend_url, request)
    with pytest.raises(StoreUnavailableError, match="no cohortroute store"):
        open_store(with_query(backend_url, mode="rw")).revision()
    assert nothing_stored(backend_url, request)

    created = cli("tag", "acme", "beta", store=with_query(backend_url, mode="rwc"))
    assert created.code == 0, created.err
    assert cli("status", store=backend_url).code == 0

"""A SQLite store's file over its life: not there yet at boot, deleted or replaced while in use,
and never created by accident (``mode=rw`` / ``open_store(url, create=False)``)."""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter
from cohortroute.errors import ConfigurationError, StoreUnavailableError
from cohortroute.store import open_store
from cohortroute.store.sqlite import SQLiteStore
from tests.apps import wsgi_version


def url_for(path: Path, query: str = "") -> str:
    return f"sqlite:///{path}{query}"


def served(router: Any, tenant: str) -> tuple[int, str, str]:
    """(status, version, reason) of one request for ``tenant``."""
    response = Client(router).get("/", headers={"Host": f"{tenant}.example.com"})
    words = response.get_data(as_text=True).split()
    return response.status_code, words[0], words[2]


@pytest.fixture
def routers() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for router in made:
        router.close()


def router_over(url: str, routers: list[Any]) -> Any:
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=url,
        refresh_interval=0,  # every request confirms the revision: no clock to drive
    )
    routers.append(router)
    return router


# --- a file that cannot be opened when a worker starts -----------------------------------------


@pytest.mark.parametrize("what", ["missing directory", "missing file, mode=rw"])
def test_a_router_over_an_unopenable_file_starts_degraded_and_recovers(
    what: str, tmp_path: Path, routers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-mounted-yet"
    path = folder / "state.db" if what == "missing directory" else tmp_path / "state.db"
    query = "" if what == "missing directory" else "?mode=rw"
    with caplog.at_level(logging.ERROR):
        router = router_over(url_for(path, query), routers)  # a gunicorn worker booting
    assert served(router, "acme") == (200, "v1", "default")
    status = router.status()
    assert status["degraded"] is True
    assert str(path) in status["last_error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(path) in line and "degraded" in line for line in errors), errors

    # The volume is mounted / the store is created: the same router recovers by itself.
    folder.mkdir(exist_ok=True)
    made = open_store(url_for(path))
    made.register_versions(["v1", "v2"], "v1", actor="ops")
    made.pin("acme", "v2", actor="ops")
    made.close()
    assert served(router, "acme") == (200, "v2", "pin")
    assert router.status()["degraded"] is False


def test_an_unopenable_store_raises_store_unavailable_from_its_calls(tmp_path: Path) -> None:
    store = open_store(url_for(tmp_path / "no" / "state.db"))  # building it touches nothing
    assert not (tmp_path / "no").exists()
    for call in (store.revision, store.policy, lambda: store.pin("acme", "v1")):
        with pytest.raises(StoreUnavailableError, match="mkdir -p"):
            call()


# --- never created by accident ------------------------------------------------------------------


def test_create_false_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for store in (open_store(url_for(path), create=False), open_store(url_for(path, "?mode=rw"))):
        with pytest.raises(StoreUnavailableError, match=r"no cohortroute store at .*mode=rwc"):
            store.revision()
        with pytest.raises(StoreUnavailableError, match="no cohortroute store"):
            store.tag("acme", "beta")
    assert list(tmp_path.iterdir()) == []


def test_create_false_refuses_a_file_without_a_store_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE mine (x)")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreUnavailableError, match="holds no cohortroute tables"):
        open_store(url_for(path), create=False).revision()
    assert path.read_bytes() == before


def test_the_url_mode_wins_over_create(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(url_for(path, "?mode=rwc"), create=False)
    assert store.revision() == 0
    assert path.exists()
    store.close()
    existing = open_store(url_for(path), create=False)
    assert existing.revision() == 0
    existing.close()


# --- a file deleted or replaced while in use ----------------------------------------------------


def remove_store_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_deleted_file_is_reported_not_silently_read(tmp_path: Path, routers: list[Any]) -> None:
    path = tmp_path / "state.db"
    store = open_store(url_for(path))
    store.register_versions(["v1", "v2"], "v1")
    store.pin("acme", "v2")
    router = router_over(url_for(path), routers)
    assert served(router, "acme") == (200, "v2", "pin")

    remove_store_files(path)
    with pytest.raises(StoreUnavailableError, match=rf"{path} was deleted.*Restore the file"):
        store.revision()
    with pytest.raises(StoreUnavailableError, match="was deleted"):
        store.pin("globex", "v2")
    assert not path.exists()  # nothing recreated it behind the operator's back
    assert served(router, "acme") == (200, "v2", "pin")  # the last-known state
    status = router.status()
    assert status["degraded"] is True and "was deleted" in status["last_error"]
    store.close()


def test_a_replaced_file_is_switched_to_loudly(
    tmp_path: Path, routers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    router = router_over(url_for(path), routers)
    old = open_store(url_for(path))
    old.pin("acme", "v2")
    assert served(router, "acme") == (200, "v2", "pin")

    # Someone builds another store elsewhere and moves it into place.
    fresh_path = tmp_path / "fresh.db"
    fresh = SQLiteStore(str(fresh_path))
    fresh.register_versions(["v1", "v2"], "v2")
    fresh.close()
    remove_store_files(path)
    os.replace(fresh_path, path)
    with caplog.at_level(logging.ERROR):
        assert old.revision() == 1  # the new file's revision, not the old one's
        assert old.tenant("acme").pin is None
        assert served(router, "acme") == (200, "v2", "default")
    replaced = [r for r in caplog.records if "was replaced" in r.getMessage()]
    # Once per store over that file (the router's and this one), not once per call.
    assert len(replaced) == 2
    assert all(record.levelno == logging.ERROR for record in replaced)
    assert str(path) in replaced[0].getMessage() and "restore" in replaced[0].getMessage()
    old.close()


# --- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0, 3601.0])
def test_the_constructor_refuses_a_timeout_out_of_range(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ConfigurationError, match="from 0 to 3600 seconds"):
        SQLiteStore(str(tmp_path / "state.db"), timeout=timeout)

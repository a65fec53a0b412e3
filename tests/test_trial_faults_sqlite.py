"""SQLite stores on an unlucky machine: a full disk."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute.errors import StoreError
from cohortroute.store import open_store
from cohortroute.store._sqlite_file import failure


def test_a_full_disk_says_what_to_do() -> None:
    error = failure(sqlite3.OperationalError("database or disk is full"), "/srv/state.db", 5)
    text = str(error)
    assert "disk is full" in text
    assert "Free space" in text and "/srv" in text and "retry" in text
    assert "not written" in text  # and that nothing half-written is left behind


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, where the machine lets us mount one (root, outside most containers)."""
    mount = tmp_path / f"tiny-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_a_full_disk_refuses_writes_loses_none_and_recovers(tiny_disk: Path) -> None:
    store = open_store(f"sqlite:///{tiny_disk}/state.db")
    try:
        store.register_versions(["v1", "v2"], "v1")
        filler = tiny_disk / "filler"
        filler.write_bytes(b"x" * 60_000)
        written = 0
        with pytest.raises(StoreError, match=r"disk is full.*Free space"):
            for written in range(10_000):
                store.pin(f"tenant-{written:05d}-{'x' * 40}", "v2")
        # Every write that returned is there, the refused one is not, the revision agrees.
        assert store.revision() == 1 + written
        assert len(list(store.tenants())) == written
        filler.unlink()
        assert store.pin("after", "v2") == 2 + written
        assert store.tenant("after").pin == "v2"
    finally:
        store.close()

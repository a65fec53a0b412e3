"""A SQLite URL in the docs means the path a reader expects.

``sqlite:///var/lib/myapp/cohortroute.db`` (three slashes) is the *relative* path
``var/lib/myapp/cohortroute.db``: the quick start showed it as its production store, so a router
started from /srv/app wrote to /srv/app/var/lib/..., or failed on a missing directory, while the
reader meant /var/lib/... (``sqlite:////var/lib/...``, four slashes).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cohortroute import open_store

ROOT = Path(__file__).resolve().parent.parent
# Three slashes, then a directory that only makes sense at the file system's root.
_ROOTED = re.compile(r"sqlite:///(?:var|tmp|srv|home|opt|etc|run|usr|mnt|data)/")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_no_doc_spells_an_absolute_path_with_three_slashes() -> None:
    found = [
        f"{document.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
        for document in _documents()
        for text in [document.read_text(encoding="utf-8")]
        for match in _ROOTED.finditer(text)
    ]
    assert found == [], "write sqlite:////var/... (four slashes) for an absolute path"


def test_three_slashes_are_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the quick start now says, checked against the store itself.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    store = open_store("sqlite:///var/state.db")
    try:
        store.register_versions(["v1"], "v1", actor="test")  # the file is made on first use
    finally:
        store.close()
    assert (tmp_path / "var" / "state.db").is_file()

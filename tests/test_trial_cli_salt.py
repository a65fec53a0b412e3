"""``rollout start --salt`` takes one printable line of reasonable length, and status prints
a stored salt safely.

A 100,000-character salt was stored (and hashed on every routing decision) and printed whole
by ``status``; a salt holding a newline and an escape sequence broke the status line and
drove the operator's terminal (``ESC[31m`` went out raw).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cohortroute.store import open_store
from tests.cli_inproc import cli


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    store.close()
    return url


@pytest.mark.parametrize(
    ("salt", "said"),
    [("s" * 100_000, "at most 200"), ("a\nb\x1b[31m", "control characters")],
    ids=["long", "escapes"],
)
def test_a_salt_that_cannot_be_shown_is_refused(url: str, salt: str, said: str) -> None:
    result = cli("rollout", "start", "v2", "--percent", "5", "--salt", salt, store=url)
    assert result.code == 2, result.out + result.err
    assert said in result.err
    assert len(result.err) < 2_000
    store = open_store(url)
    try:
        assert store.policy().rollout is None
    finally:
        store.close()


def test_a_salt_with_spaces_or_unicode_is_fine(url: str) -> None:
    result = cli("rollout", "start", "v2", "--percent", "5", "--salt", "tögglé 2", store=url)
    assert result.code == 0, result.err


def test_status_prints_a_stored_salt_on_one_safe_line(url: str) -> None:
    store = open_store(url)  # written by another program, or before the check existed
    # Python refuses such a salt now too: write it past the check, as an old version did.
    store.start_rollout("v2", percent=5, salt="ok")
    bad = "a\nb\x1b[31m" + "x" * 5000
    store.update_policy(
        "rollout-start",
        lambda p: replace(p, rollout=replace(p.rollout, salt=bad)) if p.rollout else p,
    )
    store.close()
    for verb in (("status",), ("rollout", "status")):
        result = cli(*verb, store=url)
        assert result.code == 0, result.err
        line = next(x for x in result.out.splitlines() if x.startswith("rollout:"))
        assert "\x1b" not in result.out and "\\x1b" in line
        assert len(line) < 600

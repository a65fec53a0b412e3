"""A store URL with a known scheme but too few slashes gets a hint that names that scheme.

``--store sqlite:/state.db`` used to be answered "did you mean 'sqlite:///sqlite:/state.db'?",
a URL that is itself wrong: the hint now keeps the scheme and only adds the missing slashes.
"""

from __future__ import annotations

import pytest

from tests.cli_inproc import cli


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("sqlite:state.db", "'sqlite:///state.db' (relative) or 'sqlite:////state.db'"),
        ("sqlite:/state.db", "'sqlite:///state.db' (relative) or 'sqlite:////state.db'"),
        ("sqlite:/srv/app/state.db", "'sqlite:////srv/app/state.db'"),
        ("redis:/127.0.0.1:6379/0", "'redis://127.0.0.1:6379/0'"),
        ("postgresql:db.internal/app", "'postgresql://db.internal/app'"),
        ("memory:", "'memory://'"),
    ],
)
def test_a_known_scheme_without_slashes_keeps_its_scheme_in_the_hint(given: str, hint: str) -> None:
    result = cli("status", store=given)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert hint in result.err
    assert "sqlite:///sqlite:" not in result.err
    assert "sqlite:///redis:" not in result.err


def test_a_bare_path_still_gets_the_sqlite_hint() -> None:
    result = cli("status", store="state.db")
    assert result.code == 2
    assert "did you mean 'sqlite:///state.db'?" in result.err

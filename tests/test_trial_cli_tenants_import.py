"""``tenants import`` reads a CSV saved with a UTF-8 byte order mark.

Spreadsheets save "CSV UTF-8" with a BOM (EF BB BF) before the first cell. The import read it
as part of the first name: a header row ``tenant,tags`` became the tenant ``'\\ufefftenant'``
and the whole file was refused ("line 1: invalid tenant"), as was a file without a header
(its first tenant). The BOM is now skipped, as the UTF-8 codec for such files does.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from cohortroute.rollout.tenants import parse_tenant_lines
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
    "content",
    [
        b"\xef\xbb\xbftenant,tags\r\nacme,beta\r\nglobex,eu\r\n",
        b"\xef\xbb\xbfacme,beta\nglobex,eu\n",
        b"\xef\xbb\xbf# exported 2026-12-01\nacme,beta\nglobex,eu\n",
    ],
    ids=["header-crlf", "no-header", "comment-first"],
)
def test_a_byte_order_mark_is_skipped(content: bytes, url: str, tmp_path: Path) -> None:
    path = tmp_path / "tenants.csv"
    path.write_bytes(content)
    result = cli("tenants", "import", str(path), store=url)
    assert result.code == 0, result.err
    store = open_store(url)
    try:
        assert store.tenant("acme").tags == {"beta"}
        assert store.tenant("globex").tags == {"eu"}
    finally:
        store.close()


def test_lines_given_in_python_may_start_with_one_too() -> None:
    names, tags = parse_tenant_lines(["\ufefftenant,tags", "acme,beta"])
    assert names == ["acme"] and tags == {"acme": ["beta"]}


def test_a_mark_inside_the_file_is_still_refused() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_tenant_lines(["acme", "\ufeffglobex"])


def _stdin(monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    stream = io.TextIOWrapper(io.BytesIO(content), encoding="latin-1", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stream)


def test_stdin_that_is_not_utf8_is_refused_as_a_file_is(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to be decoded with the locale's codec: garbage was reported as "invalid tenant
    # '\\udc90...'" (or, under a Latin-1 locale, imported as other names).
    _stdin(monkeypatch, b"acme\n\xff\xfeglobex\n")
    result = cli("tenants", "import", "-", store=url)
    assert result.code == 2, result.out + result.err
    assert "standard input is not UTF-8 text (line 2)" in result.err


def test_stdin_is_read_as_utf8_with_its_byte_order_mark_skipped(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, b"\xef\xbb\xbftenant,tags\nacme,beta\n")
    result = cli("tenants", "import", "-", store=url)
    assert result.code == 0, result.err
    store = open_store(url)
    try:
        assert store.tenant("acme").tags == {"beta"}
    finally:
        store.close()

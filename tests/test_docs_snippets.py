"""Every complete program in the docs runs, and the site's API page covers the public API.

A fenced ``python`` block right after a ``<!-- run -->`` line (in docs/ or README.md) is a
complete program: it is executed here, in a temporary directory, as ``__main__``. Blocks without
the marker are fragments (they name your app, your modules) and are only read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cohortroute

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- run -->$", re.MULTILINE)  # alone on its line; prose may quote it
_BLOCK = re.compile(r"^<!-- run -->\n```python[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _snippets() -> list[tuple[str, str]]:
    found = []
    for document in _documents():
        text = document.read_text(encoding="utf-8")
        for number, match in enumerate(_BLOCK.finditer(text), 1):
            line = text.count("\n", 0, match.start()) + 2
            found.append((f"{document.relative_to(ROOT)}:{line}#{number}", match.group(1)))
    return found


SNIPPETS = _snippets()


def test_every_run_marker_precedes_a_python_block() -> None:
    for document in _documents():
        text = document.read_text(encoding="utf-8")
        assert len(MARKER.findall(text)) == len(_BLOCK.findall(text)), (
            f"{document.relative_to(ROOT)}: put <!-- run --> on the line right before a "
            "```python fence"
        )


def test_the_docs_hold_runnable_programs() -> None:
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize(("where", "source"), SNIPPETS, ids=[where for where, _ in SNIPPETS])
def test_snippet_runs(
    where: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile(source, where, "exec")
    exec(code, {"__name__": "__main__", "__file__": str(tmp_path / "snippet.py")})


def test_the_api_page_documents_every_public_name() -> None:
    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: cohortroute\.(\w+)$", page, re.MULTILINE))
    assert set(cohortroute.__all__) - {"__version__"} <= documented

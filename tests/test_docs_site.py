"""The site's build hooks: a stale CLI reference fails the build; outside links become paths."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")

from mkdocs.exceptions import PluginError

import docs_hooks
from cohortroute.cli.reference import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent


def _page(uri: str) -> SimpleNamespace:
    return SimpleNamespace(file=SimpleNamespace(src_uri=uri))


def test_the_cli_page_as_written_builds() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert docs_hooks.on_page_markdown(text, _page("cli.md")) == text


def test_a_stale_cli_reference_fails_the_build_and_says_how_to_fix_it() -> None:
    stale = f"# CLI\n\n{BEGIN}\n### `cohortroute gone`\n{END}\n"
    with pytest.raises(PluginError, match=r"python -m cohortroute.cli.reference --write"):
        docs_hooks.on_page_markdown(stale, _page("cli.md"))


def test_links_out_of_docs_become_repository_paths_and_others_stay() -> None:
    text = (
        "[`examples/toy_store.py`](../examples/toy_store.py), "
        "[the test](../tests/store/test_toy.py), [FAQ](faq.md)"
    )
    assert docs_hooks.on_page_markdown(text, _page("custom-store.md")) == (
        "`examples/toy_store.py`, the test (`tests/store/test_toy.py` in the repository), "
        "[FAQ](faq.md)"
    )
    inside = "[home](../index.md) and [CLI](../cli.md#cohortroute-status)"
    assert docs_hooks.on_page_markdown(inside, _page("reference/api.md")) == inside

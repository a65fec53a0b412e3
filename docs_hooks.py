"""MkDocs hooks for the documentation site (named in mkdocs.yml).

* The CLI page's reference part is generated from the parser by :mod:`cohortroute.cli.reference`;
  the build fails when docs/cli.md holds a stale copy, so the site can never show a command
  reference the installed parser disagrees with.
* The Markdown files link to files outside docs/ (``../examples/toy_store.py``) so that they read
  well on a code host; on the site those become the repository path in code font, since the
  site does not publish the source tree.
"""

from __future__ import annotations

import logging
import posixpath
import re
from typing import Any

from mkdocs.exceptions import PluginError

from cohortroute.cli import build_parser
from cohortroute.cli.reference import BEGIN, END, render

log = logging.getLogger(__name__)

_OUTSIDE = re.compile(r"\[([^\]]+)\]\((\.\./[^)#\s]+)\)")


def _check_cli_reference(markdown: str) -> None:
    if BEGIN not in markdown or END not in markdown:
        raise PluginError("docs/cli.md lost its generated-reference markers")
    written = markdown.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")
    if written != render(build_parser()):
        raise PluginError(
            "docs/cli.md is out of date: run "
            "`python -m cohortroute.cli.reference --write docs/cli.md`"
        )


def _repository_path(page_uri: str, link: str) -> str | None:
    """``examples/toy_store.py`` for ``../examples/toy_store.py`` on a page in docs/."""
    joined = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), link))
    return None if joined.startswith(("docs/", "..")) else joined


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Check the CLI page's reference; turn links out of docs/ into repository paths."""
    uri = page.file.src_uri
    if uri == "cli.md":
        _check_cli_reference(markdown)

    def outside(match: re.Match[str]) -> str:
        path = _repository_path(uri, match.group(2))
        if path is None:
            return match.group(0)
        text = match.group(1)
        return f"{text} (`{path}` in the repository)" if text.strip("`") != path else f"`{path}`"

    return _OUTSIDE.sub(outside, markdown)

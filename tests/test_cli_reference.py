"""The command reference in docs/cli.md is the parser's, and every ``--json`` key is documented."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute import open_store
from cohortroute.cli import build_parser
from cohortroute.cli.reference import BEGIN, END, commands, render
from cohortroute.cli.shapes import JsonShape
from cohortroute.rollout import RolloutController

from .cli_inproc import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
OLD, NEW = "2026.11", "2026.12"


def test_docs_cli_md_holds_the_reference_the_parser_generates() -> None:
    document = DOC.read_text(encoding="utf-8")
    written = document.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")
    assert written == render(build_parser()), (
        "docs/cli.md is out of date: run `python -m cohortroute.cli.reference --write docs/cli.md`"
    )


def test_the_reference_lists_every_verb() -> None:
    reference = render(build_parser())
    for verb in (
        "status",
        "explain",
        "history",
        "pin",
        "unpin",
        "tag",
        "untag",
        "rule",
        "tenants import",
        "tenants add",
        "versions",
        "versions list",
        "versions retire",
        "versions unretire",
        *(
            f"rollout {action}"
            for action in (
                [
                    "start",
                    "set",
                    "advance",
                    "preview",
                    "status",
                    "halt",
                    "resume",
                    "run",
                    "rollback",
                    "finalize",
                ]
            )
        ),
        "demo",
    ):
        assert f"### `cohortroute {verb}`" in reference, verb


def _json_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for path, parser, _ in commands(build_parser()):
        if any("--json" in action.option_strings for action in parser._actions):
            yield " ".join(path), parser


def test_every_json_option_has_a_documented_shape() -> None:
    found = dict(_json_parsers())
    assert {"status", "explain", "history", "versions", "rollout status", "rollout run"} <= set(
        found
    )
    for name, parser in found.items():
        assert isinstance(parser.get_default("json_shape"), JsonShape), name


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    address = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(address)
    store.register_versions([OLD, NEW], OLD, actor="router")
    RolloutController(store).register(["acme", "globex"])
    store.pin("acme", NEW)
    store.start_rollout(NEW, 30, plan=[30, 60], actor="setup")
    store.close()
    yield address


def _top_keys(shape: JsonShape) -> set[str]:
    return {key.split(".")[0].split("[")[0].split(" ")[0] for key, _ in shape.keys}


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("explain", "acme"),
        ("history",),
        ("versions",),
        ("rollout", "status"),
        ("rollout", "preview"),
        ("rollout", "run", "--once"),
    ],
)
def test_each_json_output_has_exactly_the_documented_keys(
    url: str, command: tuple[str, ...]
) -> None:
    parser = dict(_json_parsers())[
        " ".join(command[:2] if command[0] == "rollout" else command[:1])
    ]
    shape = parser.get_default("json_shape")
    result = cli(*command, "--json", store=url)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == _top_keys(shape)
    if command == ("versions",):
        assert set(data["versions"][0]) == {
            key.split(".")[1] for key, _ in shape.keys if key.startswith("versions[].")
        }

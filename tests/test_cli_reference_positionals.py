"""docs/cli.md lists every command's positional arguments, those named VERSION included."""

from __future__ import annotations

from cohortroute.cli.main import build_parser
from cohortroute.cli.reference import render


def test_positional_version_arguments_are_in_the_reference() -> None:
    reference = render(build_parser())
    for synopsis in (
        "cohortroute pin TENANT VERSION",
        "cohortroute rule TAG [VERSION] [--remove]",
        "cohortroute rollout start VERSION [--percent P]",
        "cohortroute override mint TENANT VERSION --key-id KEY_ID",
        "cohortroute visitors set VERSION --percent P",
    ):
        assert synopsis in reference
    assert "| `--store URL` |" not in reference  # the global options stay documented once
    assert "| `--actor NAME` |" not in reference


def test_the_visitors_verbs_have_descriptions() -> None:
    reference = render(build_parser())
    for verb, summary in (
        ("show", "print the sample"),
        ("set", "serve PERCENT of anonymous visitors VERSION"),
        ("off", "stop sampling: every anonymous visitor gets the default"),
    ):
        assert f"### `cohortroute visitors {verb}`\n\n{summary}\n" in reference

"""The ``reason`` values ``explain --json`` and ``status --json`` print are the documented ones.

With ``--assign``, a tenant a custom backend decides has reason ``backend`` (in ``explain`` and
in ``status``'s ``tenants.by_reason``), but the JSON reference (docs/cli.md, generated from
:mod:`cohortroute.cli.shapes`) listed only ``pin``, ``tag``, ``rollout``, ``default`` (and
``unmounted`` for explain): a script written from the reference did not expect it.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohortroute import Assignment, Query
from cohortroute.cli.shapes import EXPLAIN, STATUS, JsonShape
from cohortroute.store import open_store
from tests.cli_inproc import cli


@dataclass(frozen=True)
class Paid:
    name: str = "paid"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return Assignment("v2", "plan", "paid") if query.tenant == "acme" else None


@pytest.fixture
def assign() -> Iterator[str]:
    module = types.ModuleType("trial_json_reasons")
    module.backends = [Paid()]  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield f"{module.__name__}:backends"
    del sys.modules[module.__name__]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    store.tag("acme", "x")
    store.pin("globex", "v2")
    store.close()
    return url


def documented(shape: JsonShape, key: str) -> set[str]:
    return set(re.findall(r"`([a-z-]+)`", dict(shape.keys)[key]))


def test_explain_reasons_are_documented(url: str, assign: str) -> None:
    result = cli("explain", "acme", "--assign", assign, "--json", store=url)
    assert result.code == 0, result.err
    assert json.loads(result.out)["reason"] == "backend"
    assert "backend" in documented(EXPLAIN, "reason")


def test_status_reasons_are_documented(url: str, assign: str) -> None:
    result = cli("status", "--assign", assign, "--json", store=url)
    assert result.code == 0, result.err
    reasons = set(json.loads(result.out)["tenants"]["by_reason"])
    assert reasons == {"backend", "pin"}
    assert reasons <= documented(STATUS, "tenants.by_reason")

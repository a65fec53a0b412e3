"""A backend *class* given where an instance belongs is refused when the chain is built.

``assign=[PlanTier]`` (or ``--assign myapp.routing:PlanTier``) used to be accepted: the class has
``name``, ``ttl``, ``timeout`` and an ``assign`` function, so every decision then called
``PlanTier.assign(query)`` unbound, failed with a TypeError and skipped the backend -- silently
serving everybody without it. Both now say to instantiate it.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cohortroute import Assignment, Query
from cohortroute.assign.chain import Chain
from cohortroute.errors import ConfigurationError
from tests.cli_inproc import cli


@dataclass(frozen=True)
class PlanTier:
    name: str = "plan-tier"
    ttl: float | None = 60.0
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return Assignment("v2", "plan", "paid")


def test_a_class_in_a_chain_is_refused_saying_to_instantiate_it() -> None:
    with pytest.raises(ConfigurationError, match=r"PlanTier\(\)"):
        Chain([PlanTier])  # type: ignore[list-item]
    assert Chain([PlanTier()]).backends  # an instance is fine


@pytest.fixture
def routing_module() -> Iterator[str]:
    module = types.ModuleType("trial_routing_cls")
    module.PlanTier = PlanTier  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def test_the_cli_refuses_a_class_given_to_assign(routing_module: str) -> None:
    result = cli("explain", "acme", "--assign", f"{routing_module}:PlanTier", store="memory://")
    assert result.code == 2, result.out + result.err
    assert "PlanTier()" in result.err
    assert "Traceback" not in result.err

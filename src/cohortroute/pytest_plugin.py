"""The pytest plugin (registered when cohortroute is installed): the ``cohort`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import CohortOverrides


@pytest.fixture
def cohort() -> Iterator[CohortOverrides]:
    """Force versions on routers for one test: ``cohort.force(app, "2026.12", tenant="acme")``."""
    overrides = CohortOverrides()
    try:
        yield overrides
    finally:
        overrides.reset()

"""A rollout's ``every`` (seconds per plan step) is a finite, non-negative number whichever way
the rollout is started: ``nan`` or ``inf`` made a plan that never (or always) moves."""

from __future__ import annotations

import math

import pytest

from cohortroute import open_store
from cohortroute.errors import ValidationError


@pytest.mark.parametrize("every", [math.nan, math.inf, -math.inf, -1.0])
def test_a_rollout_refuses_an_every_that_is_not_a_finite_non_negative_number(every: float) -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    with pytest.raises(ValidationError, match="non-negative number of seconds"):
        store.start_rollout("v2", 0, plan=[1, 10, 50, 100], every=every)
    assert store.policy().rollout is None  # nothing was started


def test_a_finite_every_is_kept() -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    store.start_rollout("v2", 0, plan=[1, 10, 50, 100], every=7200.0)
    rollout = store.policy().rollout
    assert rollout is not None and rollout.every == 7200.0

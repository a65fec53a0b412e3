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


@pytest.mark.parametrize(
    ("salt", "says"), [("s" * 201, "at most 200"), ("a\nb\x1b[31m", "control characters")]
)
def test_a_rollout_started_from_python_checks_its_salt_like_the_cli(salt: str, says: str) -> None:
    # --salt refused these; Store.start_rollout and the controller stored them.
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    with pytest.raises(ValidationError, match=says):
        store.start_rollout("v2", 5, salt=salt)
    assert store.policy().rollout is None


def test_a_long_value_in_an_error_keeps_its_closing_quote() -> None:
    from cohortroute.errors import quoted

    assert quoted("x" * 500, 20) == "'" + "x" * 15 + "...'"
    assert len(quoted("x" * 500, 20)) == 20
    assert quoted("short") == "'short'"
    with pytest.raises(ValidationError) as caught:
        store = open_store("memory://")
        store.pin("y" * 300, "v1")
    assert "...'" in str(caught.value)


@pytest.mark.parametrize(
    ("reason", "says"), [("r" * 501, "at most 500"), ("line\nbreak", "control characters")]
)
def test_a_halt_reason_is_one_line_of_at_most_500_characters(reason: str, says: str) -> None:
    # It is stored in the policy every router reads: 100,000 characters were accepted.
    from cohortroute import RolloutController

    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    controller = RolloutController(store, actor="ops")
    controller.start("v2", percent=5)
    with pytest.raises(ValidationError, match=says):
        controller.halt(reason)
    rollout = store.policy().rollout
    assert rollout is not None and not rollout.halted
    assert controller.halt("r" * 500).halt_reason == "r" * 500


def test_a_tenant_in_another_script_is_told_the_name_browsers_send() -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    with pytest.raises(ValidationError, match="browsers send 'xn--mlaut-jva' for it"):
        store.pin("ümlaut", "v2")
    store.pin("xn--mlaut-jva", "v2")  # the name the router resolves ümlaut.example.com to
    assert store.tenant("xn--mlaut-jva").pin == "v2"

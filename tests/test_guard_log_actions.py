"""The guard logs each action it takes as a warning for a library user, but the CLI, which prints
each action itself, turns that off: `rollout run` said every guard action twice."""

from __future__ import annotations

import logging

import pytest

from .guard_world import World


def _acted(log_actions: bool) -> list[str]:
    world = World()
    reached = world.start(25)
    broken = reached[-1]
    guard = world.guard(log_actions=log_actions)
    actions: list[str] = []
    for _ in range(30):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        actions += guard.check().actions
    assert actions, "the broken tenant was never acted on"
    return actions


@pytest.mark.parametrize("log_actions", [True, False])
def test_actions_are_logged_only_when_asked(
    log_actions: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cohortroute.guard.evaluator")
    actions = _acted(log_actions)
    logged = [r.getMessage() for r in caplog.records if r.name == "cohortroute.guard.evaluator"]
    assert logged == ([f"cohortroute guard: {line}" for line in actions] if log_actions else [])


def test_the_cli_guard_prints_its_actions_instead_of_logging_them_too() -> None:
    import argparse
    from types import SimpleNamespace

    from cohortroute.cli.guard import _guard

    world = World()
    ctx = SimpleNamespace(store=world.store, sink=world.sink, clock=world.clock)
    args = argparse.Namespace(action=None, holder=None, app=None)
    guard = _guard(args, ctx, 60.0)  # type: ignore[arg-type]
    assert guard.log_actions is False


def test_a_long_verdict_halts_with_a_shortened_reason() -> None:
    # A halt reason holds at most 500 characters; the guard's verdict line names every tenant it
    # sent back and may be longer: it halts anyway, with the line shortened.
    from cohortroute.guard.actions import _halt
    from cohortroute.policy import MAX_HALT_REASON

    world = World()
    world.start(25)
    done: list[str] = []
    _halt(world.controller, "sent back: " + ", ".join(f"t{i}" for i in range(400)), done)
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted and rollout.halt_reason is not None
    assert len(rollout.halt_reason) == MAX_HALT_REASON and rollout.halt_reason.endswith("...")
    assert done and done[0].startswith("halted the rollout: sent back: t0, t1")


def test_a_tiny_p_value_reads_p_less_than() -> None:
    from cohortroute.guard.explain import p_clause

    assert p_clause(1e-20) == "p < 1e-12"
    assert p_clause(0.0004) == "p = 0.0004"
    assert p_clause(1.0) == "p = 1"

"""The guard does not write the same action into the audit log at every check: a rollout it
halted (or could not roll back) stays as it is, with one entry, until something changes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from cohortroute.changes import update_rollout
from cohortroute.guard import GuardConfig
from cohortroute.policy import STATE_DATA, Policy

from .guard_world import World


def _regression(tenant: str, version: str) -> float:
    return 0.02 if version == "v2" else 0.002


def _guard_entries(world: World) -> Counter[str]:
    return Counter(e.action for e in world.store.history(None, 5000) if e.actor == "guard")


def test_a_halted_rollout_is_not_halted_again_at_every_check() -> None:
    world = World()
    world.start(25)
    guard = world.guard(config=GuardConfig(actions={"5xx": "halt", "slow": "halt"}))
    for _ in range(60):
        world.minutes(1, error=_regression)
        guard.check()
        rollout = world.store.policy().rollout
        if rollout is not None and rollout.halted:
            break
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted
    assert _guard_entries(world)["guard-halt"] == 1
    revision = world.store.revision()
    for _ in range(5):
        world.minutes(1, error=_regression)
        check = guard.check()
        assert check.assessment is not None and check.assessment.verdict.kind == "halt"
        assert not any(line.startswith("halted") for line in check.actions)
    assert _guard_entries(world)["guard-halt"] == 1
    assert _guard_entries(world)["rollout-halt"] == 1
    # only the lease's renewals (and send-backs) may have written since
    assert {e.action for e in world.store.history(None, 5000) if e.revision > revision} <= {
        "guard-lease-renew",
        "guard-send-back",
        "rollback",
    }
    # an operator who resumes while the evidence still stands sees it halted again, once
    world.controller.resume()
    world.minutes(1, error=_regression)
    assert any(line.startswith("halted the rollout") for line in guard.check().actions)
    assert _guard_entries(world)["guard-halt"] == 2


def test_a_rollout_it_cannot_roll_back_is_halted_once_not_retried_every_check() -> None:
    world = World()
    world.start(25)

    def gate(policy: Policy) -> Policy:
        assert policy.rollout is not None
        return replace(policy, rollout=replace(policy.rollout, gated=True))

    world.store.write(update_rollout("rollout-gate", gate), actor="test")
    # the tenants' data already migrated, so the candidate serves them
    world.store.update_tenants(
        world.names,
        "migrated",
        lambda r, p: replace(r, state={**r.state, STATE_DATA: "v2"}),
        actor="test",
    )
    guard = world.guard()
    for _ in range(60):
        world.minutes(1, error=_regression)
        guard.check()
        rollout = world.store.policy().rollout
        if rollout is not None and rollout.halted:
            break
    rollout = world.store.policy().rollout
    assert rollout is not None and rollout.halted and rollout.gated
    assert rollout.halt_reason is not None and "cannot roll back" in rollout.halt_reason
    for _ in range(5):
        world.minutes(1, error=_regression)
        check = guard.check()
        assert check.assessment is not None and check.assessment.verdict.kind == "rollback"
    assert _guard_entries(world)["guard-rollback"] == 1
    assert world.store.policy().rollout is not None

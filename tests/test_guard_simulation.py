"""The guard in a small seeded simulation: skewed traffic, noisy baselines, bursts, incidents.

The full 1,000-run study is ``benchmarks/guard_simulation.py`` (figures in docs/guard.md); these
runs are small enough for the suite and check the same three claims.
"""

from __future__ import annotations

from dataclasses import replace

from cohortroute.guard.simulation import Scenario, simulate

SMALL = Scenario(tenants=60, stages=(2, 6, 15, 30), stage_minutes=25, incident_chance=0.5)


def test_no_regression_never_halts() -> None:
    for seed in range(5):
        outcome = simulate(SMALL, seed)
        assert not outcome.false_alarm, (seed, outcome)


def test_a_tenfold_regression_is_detected() -> None:
    for seed in range(3):
        outcome = simulate(replace(SMALL, regression=10.0), seed)
        assert outcome.action == "rollback", (seed, outcome)


def test_one_incompatible_tenant_is_sent_back_and_the_rollout_is_not_rolled_back() -> None:
    for seed in range(3):
        outcome = simulate(replace(SMALL, broken=True), seed)
        assert outcome.broken_tenant in outcome.breakers, (seed, outcome)
        assert outcome.action is None, (seed, outcome)
        assert set(outcome.breakers) == {outcome.broken_tenant}

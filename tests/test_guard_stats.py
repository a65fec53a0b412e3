"""The guard's arithmetic and the laws its decision keeps."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohortroute.guard import stats
from cohortroute.guard.evidence import Baselines, Evidence, TenantEvidence, TenantHistory
from cohortroute.guard.simulation import poisson
from cohortroute.guard.verdict import GuardConfig, judge

counts = st.floats(min_value=0, max_value=500, allow_nan=False)


def test_minimum_evidence_matches_the_documented_figures() -> None:
    alpha = 0.01 / 3
    assert stats.min_expected(10, alpha) == pytest.approx(0.53, abs=0.01)
    assert stats.min_expected(3, alpha) == pytest.approx(5.8, abs=0.05)
    assert stats.min_expected(2, alpha) == pytest.approx(19.4, abs=0.1)
    assert stats.min_expected(3, alpha, f=2) == pytest.approx(2 * stats.min_expected(3, alpha))


def test_shrinkage_inflation_factor_and_cap() -> None:
    assert stats.shrunk_rate(0, 0, 0.002) == pytest.approx(0.002)
    assert stats.shrunk_rate(100, 1_000_000, 0.002) == pytest.approx(1e-4, rel=0.05)
    assert stats.inflation(100, 100) == 2
    assert stats.minute_factor(0, 50) == 1  # a quiet stable minute never lowers expectations
    assert stats.minute_factor(59, 9) == 6
    assert stats.minute_cap(0) == 2 and stats.minute_cap(0.5) == 12


@given(counts, counts, st.floats(min_value=0.01, max_value=50))
def test_evidence_grows_with_observed_errors(o: float, e: float, more: float) -> None:
    assert stats.log_mixture(o + more, e) >= stats.log_mixture(o, e)


@given(counts, counts, st.floats(min_value=0.01, max_value=50))
def test_evidence_shrinks_with_expected_errors(o: float, e: float, more: float) -> None:
    assert stats.log_mixture(o, e + more) <= stats.log_mixture(o, e)


def test_the_mixture_is_a_fair_bet_under_the_null() -> None:
    """E[Lambda] = 1 when O ~ Poisson(E): the property Ville's inequality rests on."""
    for e in (0.5, 3.0, 20.0):
        mean = sum(
            math.exp(-e + k * math.log(e) - math.lgamma(k + 1) + stats.log_mixture(k, e))
            for k in range(2000)
        )
        assert mean == pytest.approx(1.0, rel=1e-6)


def test_checked_every_minute_the_false_alarm_rate_stays_within_alpha() -> None:
    rnd = random.Random(7)
    threshold = math.log(100)  # alpha = 0.01
    alarms = 0
    for _ in range(300):
        o = e = 0.0
        for _ in range(100):
            e += 0.2
            o += poisson(0.2, rnd)
            if stats.log_mixture(o, e) >= threshold:
                alarms += 1
                break
    assert alarms <= 3 * 2  # 1 % of 300, with room for sampling noise


def _evidence(tallies: dict[str, tuple[float, float]]) -> Evidence:
    """Evidence where each tenant has (observed, expected) server errors and a long history."""
    history = {t: TenantHistory(10**9, (0, 0, 0)) for t in tallies}
    ev = Evidence(Baselines(history))
    for tenant, (o, e) in tallies.items():
        te = ev.tenants[tenant] = TenantEvidence(tenant, requests=1000)
        te.tallies[0].raw = int(o)
        te.tallies[0].observed = o
        te.tallies[0].expected = e
    return ev


tenant_tallies = st.dictionaries(
    st.sampled_from([f"t{i}" for i in range(12)]),
    st.tuples(st.integers(0, 60).map(float), st.floats(0.1, 30)),
    min_size=1,
    max_size=12,
)
CONFIG = GuardConfig(metrics=("5xx",))


@settings(max_examples=50, deadline=None)
@given(tenant_tallies, st.floats(0.1, 40))
def test_a_tenant_with_zero_excess_never_turns_a_hold_into_a_halt(
    tallies: dict[str, tuple[float, float]], expected: float
) -> None:
    before = judge(_evidence(tallies), CONFIG)
    after = judge(_evidence({**tallies, "newcomer": (expected, expected)}), CONFIG)
    if before.kind in ("hold", "no-traffic"):
        assert after.kind in ("hold", "no-traffic")
    assert after.metrics[0].log_lambda <= before.metrics[0].log_lambda + 1e-9


@settings(max_examples=50, deadline=None)
@given(tenant_tallies, st.integers(1, 40))
def test_more_errors_never_weaken_the_cohort_evidence(
    tallies: dict[str, tuple[float, float]], more: int
) -> None:
    tenant = sorted(tallies)[0]
    o, e = tallies[tenant]
    before = judge(_evidence(tallies), CONFIG)
    after = judge(_evidence({**tallies, tenant: (o + more, e)}), CONFIG)
    assert after.metrics[0].log_lambda >= before.metrics[0].log_lambda
    assert not (before.metrics[0].regressed and not after.metrics[0].regressed) or (
        after.metrics[0].without == tenant
    )


def test_one_tenant_alone_cannot_roll_the_cohort_back() -> None:
    verdict = judge(_evidence({"acme": (40, 1), "b": (1, 1), "c": (2, 2)}), CONFIG)
    assert verdict.metrics[0].log_lambda > math.log(300)
    assert not verdict.metrics[0].regressed  # leave-one-tenant-out
    assert verdict.kind == "hold"
    assert [b[0] for b in verdict.breakers] == ["acme"]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        GuardConfig(actions={"cpu": "halt"})
    with pytest.raises(ValueError, match="rollback or halt"):
        GuardConfig(actions={"5xx": "panic"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="alpha"):
        GuardConfig(alpha=0)


def test_one_burst_does_not_trip_the_breaker_but_a_lasting_failure_does() -> None:
    history = {"acme": TenantHistory(100_000, (200, 0, 0))}

    def evidence(errors_at: dict[int, int], minutes: int) -> Evidence:
        ev = Evidence(Baselines(history))
        for m in range(minutes):
            ev.add_minute(m, {}, {"acme": (20, (errors_at.get(m, 0), 0, 0))})
        return ev

    burst = evidence({m: 3 for m in range(30, 35)}, 60)  # one five-minute burst
    assert stats.log_mixture(*burst.scaled("acme", 0)[:2]) >= math.log(1e4)
    assert judge(burst, CONFIG).breakers == ()
    lasting = evidence({m: 3 for m in range(30, 60)}, 60)
    assert [b[0] for b in judge(lasting, CONFIG).breakers] == ["acme"]

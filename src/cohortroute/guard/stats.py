"""The sequential test's arithmetic: shrunk baselines, the mixture likelihood ratio, Ville's bound.

Pure functions on counts. Under "no regression" an observed count ``O`` of events with expected
count ``E`` is (approximately) Poisson; the likelihood ratio of "the rate is theta times the
baseline" against "it is the baseline" is ``theta**O * exp(-(theta - 1) * E)``. Averaged over a
fixed prior on theta it is still a non-negative martingale with mean 1 under the null, so by
Ville's inequality ``P(sup_t Lambda_t >= 1/alpha) <= alpha``: the test may be looked at every
minute for as long as the rollout lasts. docs/guard.md has the long form.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

log = logging.getLogger(__name__)

THETAS: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
"""The effect sizes the mixture weighs equally: from a 1.5x to a 20x regression."""

SHRINK = 2000.0
"""k: a tenant's baseline counts as much as ``k`` requests at the global rate besides its own."""


def shrunk_rate(events: float, requests: float, global_rate: float, k: float = SHRINK) -> float:
    """``r_i = (e_i + k * r_bar) / (n_i + k)``: a tenant's own rate pulled towards the global one.

    A tenant with little history gets about the global rate; one with a lot gets its own.
    """
    return (events + k * global_rate) / (requests + k)


def inflation(post_requests: float, pre_requests: float) -> float:
    """``f = 1 + N_post / N_pre``: how much an estimated baseline widens the null.

    The baseline rate is itself an estimate from ``N_pre`` requests; comparing ``N_post``
    requests with it has about ``1 + N_post / N_pre`` times the Poisson variance. A tenant
    without history (``N_pre = 0``) is inflated by ``1 + N_post``: it contributes almost no
    evidence until the breaker's own threshold is overwhelmed.
    """
    return 1.0 + post_requests / max(pre_requests, 1.0)


def minute_factor(observed: float, expected: float) -> float:
    """``g_m = max(1, (O_S + 1) / (E_S + 1))``: the stable cohort's excess in the same minute.

    A global incident raises the stable cohort's errors too; expectations for the candidate
    in that minute are raised by the same factor, so it is not blamed. Never below 1: a quiet
    stable minute must not make the candidate look worse.
    """
    return max(1.0, (observed + 1.0) / (expected + 1.0))


def incident_rate(observed: float, expected: float, requests: float) -> float:
    """The stable cohort's own rate in a minute of a clear global incident, else 0.

    :func:`minute_factor` scales each candidate tenant's own rate, which fits an incident that
    multiplies every tenant's errors. An incident that fails a share of everybody's requests
    (a database away: 2% for all) hits a tenant with a low baseline many times over its own
    rate, so in a minute where the stable cohort is clearly anomalous (at least twice what it
    expects, and three standard deviations over), a candidate tenant is expected to fail at
    least as often as the stable cohort did.
    """
    if requests <= 0 or observed < 2.0 * expected + 3.0 * math.sqrt(expected) + 3.0:
        return 0.0
    return observed / requests


def minute_cap(expected: float) -> int:
    """The most events one tenant-minute may count: ``ceil(20 * expected) + 2``.

    One burst (a retry storm, a crawler) then cannot carry the whole statistic on its own.
    """
    return math.ceil(20.0 * expected) + 2


def log_mixture(observed: float, expected: float, thetas: Sequence[float] = THETAS) -> float:
    """``log Lambda`` with ``Lambda = mean over theta of theta**O * exp(-(theta - 1) * E)``."""
    terms = [observed * math.log(t) - (t - 1.0) * expected for t in thetas]
    top = max(terms)
    return top + math.log(sum(math.exp(x - top) for x in terms) / len(terms))


def mixture(observed: float, expected: float, thetas: Sequence[float] = THETAS) -> float:
    """``Lambda`` itself (``inf`` when it overflows a float)."""
    value = log_mixture(observed, expected, thetas)
    return math.inf if value > 700 else math.exp(value)


def p_value(log_lambda: float) -> float:
    """The always-valid p-value ``min(1, 1/Lambda)`` (Ville's inequality)."""
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def min_expected(theta: float, alpha: float, f: float = 1.0, arms: int = len(THETAS)) -> float:
    """``E_min(theta) = f * (ln(1/alpha) + ln(arms)) / (theta ln theta - theta + 1)``.

    The expected baseline count after which a true ``theta``-fold regression makes the
    ``theta`` term alone (weight ``1/arms``) reach ``1/alpha`` in expectation: below it, even
    a real regression of that size could not have been detected yet.
    """
    return f * (math.log(1.0 / alpha) + math.log(arms)) / (theta * math.log(theta) - theta + 1.0)

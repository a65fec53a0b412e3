"""Stable bucketing: which tenants fall under a rollout percentage.

``bucket(salt, tenant)`` is the first 8 bytes of ``SHA-256(salt + ":" + tenant)`` (UTF-8), read as
a big-endian unsigned integer, modulo 10,000. It is identical on every process, platform and
Python version (never Python's randomised ``hash()``), and golden vectors in ``tests/data/``
pin it: changing it would move customers between versions, so it is a breaking change.

A tenant is in a rollout when ``bucket(salt, tenant) < percent`` with the percentage in basis
points (0..10,000): raising the percentage only ever adds tenants, and a fresh salt per rollout
means the same few tenants are not the guinea pigs every time.

The bucket function is pluggable per rollout (:func:`rollout_bucket`): ``unleash`` buckets as
Unleash's gradual rollout does, for teams moving from it.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from .policy import Rollout

BUCKETS = 10_000
"""Number of buckets: one per basis point, so percentages have 0.01 % resolution."""


def bucket(salt: str, tenant: str) -> int:
    """Return the tenant's bucket in ``[0, 10000)`` for this salt."""
    digest = sha256(f"{salt}:{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(salt: str, tenant: str, percent: int) -> bool:
    """True when the tenant falls under ``percent`` basis points of the rollout salted ``salt``."""
    return bucket(salt, tenant) < percent


BUCKETERS = ("sha256", "unleash")
"""The bucket functions a rollout can use (``Rollout.bucketer``): ``sha256`` (:func:`bucket`,
the default) and ``unleash`` (:func:`cohortroute.assign.unleash.unleash_bucket`)."""


def bucket_function(name: str) -> Callable[[str, str], int]:
    """The bucket function called ``name`` (one of :data:`BUCKETERS`)."""
    if name == "sha256":
        return bucket
    if name == "unleash":
        from .assign.unleash import unleash_bucket  # only teams coming from Unleash pay for it

        return unleash_bucket
    raise ValidationError(
        f"unknown bucketer {name!r}; choose one of {', '.join(BUCKETERS)} (--bucketer)"
    )


def rollout_bucket(rollout: Rollout, tenant: str) -> int:
    """The tenant's bucket in ``rollout``, with the rollout's own bucket function."""
    if rollout.bucketer == "sha256":
        return bucket(rollout.salt, tenant)
    return bucket_function(rollout.bucketer)(rollout.salt, tenant)

"""The Unleash-compatible bucketer: a team moving from Unleash keeps every tenant's cohort.

Unleash's ``normalizedHash(id, groupId)`` is ``murmur3_x86_32("<groupId>:<id>", seed 0) % 100
+ 1`` and a tenant is enabled when it is ``<=`` the percentage. Here the rollout's ``salt`` is
the ``groupId`` (Unleash's default groupId is the feature toggle's name) and the bucket is that
number moved into our basis points, ``(normalized - 1) * 100``, so ``bucket < percent`` gives
exactly Unleash's answer for every whole percentage. Unleash only has whole ones, and a fraction
would round up to the next (10.5 % serves 11 %), so an Unleash rollout is refused a fraction of
a percent, as its percentage or a plan step (:func:`cohortroute.changes.rollout.check_unleash`).
"""

from __future__ import annotations

from .murmur3 import murmur3_32


def normalized_hash(group_id: str, identifier: str, normalizer: int = 100) -> int:
    """Unleash's ``normalizedHash``: 1..``normalizer`` for ``identifier`` in ``group_id``."""
    return murmur3_32(f"{group_id}:{identifier}".encode(), 0) % normalizer + 1


def unleash_bucket(salt: str, tenant: str) -> int:
    """The tenant's bucket in basis points, as Unleash buckets ``tenant`` in group ``salt``."""
    return (normalized_hash(salt, tenant) - 1) * 100

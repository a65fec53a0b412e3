"""The demo's cast: its two versions, its tenants, and the seed an empty store gets.

An empty store is seeded with tenants, a pinned QA account, a tag rule and a small rollout, so
the first page already shows every reason; a store with any history is never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..bucketing import BUCKETS, bucket
from ..policy import format_percent
from ..store import Store

log = logging.getLogger(__name__)

DEFAULT_STORE = "sqlite:///cohortroute-demo.db"
"""Where the demo keeps its state unless ``--store`` says otherwise (relative to the cwd)."""

STABLE = "2026.11"
NEW = "2026.12"
DOMAIN = "localhost"
ACTOR = "cohortroute-demo"

# Seeded tenants and their tags. Plan tags have no rule (try `cohortroute rule pro 2026.12`);
# ``beta`` has one; ``qa`` is the internal test account pinned to the new version.
SEED_TENANTS: dict[str, tuple[str, ...]] = {
    "acme": ("pro",),
    "globex": ("enterprise",),
    "hooli": ("pro",),
    "initech": ("free", "beta"),
    "qa": ("internal",),
    "soylent": ("free",),
    "stark": ("free",),
    "umbrella": ("enterprise",),
    "wayne": ("pro",),
    "wonka": ("pro",),
}
QA_TENANT = "qa"
BETA_TAG = "beta"
ROLLOUT_SALT = "demo"
"""A fixed salt, so every fresh demo puts the same tenants in the rollout."""


@dataclass(frozen=True)
class Look:
    """How one version looks: its role in the heading and its colour."""

    role: str
    colour: str
    tagline: str


LOOKS: dict[str, Look] = {
    STABLE: Look("stable", "#1d4ed8", "The version everybody is on."),
    NEW: Look("new", "#9333ea", "The redesign, rolling out tenant by tenant."),
}


def rollout_percent(salt: str, tenants: Iterable[str]) -> int:
    """Basis points for a small rollout that takes some, but not all, of ``tenants``.

    The smallest multiple of 5 % above the lowest bucket: with the seeded tenants and salt that
    puts one or two of them on the new version, so the first page already shows both.
    """
    buckets = sorted(bucket(salt, t) for t in tenants)
    if not buckets:
        return 500
    points = math.ceil((buckets[0] + 1) / 500) * 500
    if points > buckets[-1] and buckets[-1] - buckets[0] > 1:
        points = buckets[-1]  # never everybody: the highest bucket stays out
    return min(points, BUCKETS)


def rollout_candidates() -> list[str]:
    """The seeded tenants the rollout decides for: neither pinned nor caught by a tag rule."""
    return [t for t, tags in SEED_TENANTS.items() if t != QA_TENANT and BETA_TAG not in tags]


def seed(store: Store, *, actor: str = ACTOR) -> bool:
    """Fill an empty store with the demo's tenants, pin, rule and rollout; False if not empty.

    A store with any history (revision > 0) is left alone: it may be a demo the user has
    changed, or not a demo store at all.
    """
    if store.revision() != 0:
        log.debug("the store has history (revision %d): not seeding", store.revision())
        return False
    store.register_versions([STABLE, NEW], STABLE, actor=actor)
    store.register_tenants(SEED_TENANTS, actor=actor)  # its routers register nobody
    for tenant, tags in SEED_TENANTS.items():
        for tag in tags:
            store.tag(tenant, tag, actor=actor)
    store.pin(QA_TENANT, NEW, actor=actor)
    store.set_rule(BETA_TAG, NEW, actor=actor)
    percent = rollout_percent(ROLLOUT_SALT, rollout_candidates())
    store.start_rollout(NEW, format_percent(percent), salt=ROLLOUT_SALT, actor=actor)
    return True

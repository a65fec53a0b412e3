"""An assignment backend by region: the EU tenants go last.

While a rollout runs, tenants in a held region stay on the default version whatever their
bucket says; when the rollout is finalized the default moves and they move with it. The region
comes from the app (a callable, e.g. a look-up in its own tenant table)::

    regions = {"acme": "eu", "globex": "us"}
    router = CohortRouter(apps, domains=["example.com"], store=URL,
                          assign=[RegionLast(regions.get, hold={"eu"})])
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from cohortroute import Assignment, Query


@dataclass(frozen=True)
class RegionLast:
    """Tenants whose region is in ``hold`` stay on the default while a rollout runs."""

    region_of: Callable[[str], str | None]
    hold: Collection[str] = ("eu",)
    name: str = "region"
    ttl: float | None = None  # regions change with a deploy; router.invalidate() otherwise
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        if query.rollout is None:
            return None  # nothing to hold them back from
        region = self.region_of(query.tenant)
        if region not in self.hold:
            return None
        return Assignment(
            query.default,
            "region",
            f"region {region} goes last: on {query.default} until the rollout is finalized",
        )

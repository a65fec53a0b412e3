"""The routing table a proxy's map holds: every known tenant's host -> pool, and the default.

Only tenants the store has a record for are listed (registered, imported, pinned, tagged or
ratcheted): a map cannot enumerate names nobody has seen. A tenant missing from it gets the
default pool, which during a rollout differs from the router for the unlisted tenants whose
bucket is inside the share: import tenants (``cohortroute tenants import``) or use the decision
endpoint or Apache's ``prg:`` map, which decide every host live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .decider import MAINTENANCE, Decider, pool_name

log = logging.getLogger(__name__)

#: The map key holding the default pool (no host can be spelled with a leading dot).
DEFAULT_KEY = ".default"


@dataclass(frozen=True)
class Table:
    """Host -> pool for every known tenant under every domain, and the default pool."""

    default: str
    hosts: dict[str, str]
    revision: int

    @classmethod
    def build(cls, decider: Decider) -> Table:
        """The table as the store says now, decided by ``decider`` (the router's code)."""
        store = decider.store
        revision = store.revision()
        policy = store.policy()
        default_version = policy.default or decider.router.default
        if default_version not in decider.pools.servers:
            default_version = decider.router.default
        hosts: dict[str, str] = {}
        for record in store.tenants():
            pool, _decision = decider.explain(record.name)
            for domain in decider.domains:
                hosts[f"{record.name}.{domain}"] = pool
        return cls(pool_name(default_version), hosts, revision)

    def entries(self) -> list[tuple[str, str]]:
        """(key, pool) lines of the map, the default first, hosts in order."""
        return [(DEFAULT_KEY, self.default), *sorted(self.hosts.items())]

    def pools(self) -> set[str]:
        """Every pool the table names."""
        return {self.default, *self.hosts.values()}


__all__ = ["DEFAULT_KEY", "MAINTENANCE", "Table"]

"""The rollout controller: move tenants between versions safely, with their data.

:class:`RolloutController` (in :mod:`.controller`) is the operator's side of cohortroute, with
the same verbs as the CLI. Three designs carry the safety guarantees (``docs/rollouts.md`` has
the long form):

**The ratchet without a write per request** (:mod:`.ratchet`). Raising the percentage only
ever adds tenants; lowering it first marks every registered tenant the bucket serves the
candidate, and only then lowers. In a gated rollout the tenant's migrated data is the ratchet.

**Migrate, then flip** (:mod:`.runner`). A gated candidate is served to a tenant only once the
runner has migrated its data, under a lease, with routers answering it 503 meanwhile; any crash
leaves the tenant either migrating (resumable) or fully on one side.

**Timed plans without a scheduler.** ``auto`` plans store their ramp steps and the start of the
current one; every process computes the current step with :meth:`Rollout.at
<cohortroute.policy.Rollout.at>`.

This package's public names are re-exported here; ``cohortroute.rollout.RolloutController`` is
the documented import path.
"""

from ..ratchet import bucket_at_least, lower_percent
from .controller import RolloutController
from .results import FAILED_OUTCOMES, Outcome, Preview, RunResult, TenantResult
from .runner import EventHook
from .tenants import parse_duration, parse_tenant_lines

__all__ = [
    "FAILED_OUTCOMES",
    "EventHook",
    "Outcome",
    "Preview",
    "RolloutController",
    "RunResult",
    "TenantResult",
    "bucket_at_least",
    "lower_percent",
    "parse_duration",
    "parse_tenant_lines",
]

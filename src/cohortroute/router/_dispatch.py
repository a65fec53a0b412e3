"""The decision cache and the miss path, shared by the WSGI and ASGI routers.

A warm request is one ``dict.get`` on :attr:`Dispatcher.entries`, keyed by the raw Host value
(``str`` under WSGI, ``bytes`` under ASGI); an entry is ``(decision, tenant, target app)``, and
a rejected host's entry holds a ready-made 400 app, so bad hosts take the same path. Everything
else happens here on a miss: validate the host, resolve the tenant, read its record through the
:class:`~cohortroute.state_view.StateView`, decide, and pick the target (the mounted version,
the 503 answer while the tenant's data migrates, or the version wrapped to notice a tenant the
registry does not know yet).

The cache is a plain dict, bounded by starting over when full (``O(1)``, no per-hit
bookkeeping), and dropped whenever decisions may be stale. Entries computed while a drop raced
with them are not inserted (a generation counter), so a stale decision cannot outlive a drop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._clock import Clock
from ..decision import Decision, Reason, decide
from ..errors import InvalidHostError
from ..policy import Policy, TenantRecord
from ..state_view import StateView
from ..tenancy import TenantResolver, parse_host
from .overrides import Overrides
from .registration import Registrar

log = logging.getLogger(__name__)

#: An entry of the decision cache: (decision or None for a rejected host, tenant, target app).
Entry = tuple[Decision | None, str | None, Any]


@dataclass(frozen=True)
class Flavour:
    """What the miss path builds differently for WSGI and ASGI."""

    bad_request: Callable[[str], Any]
    """The 400 app for a rejected host, given the reason."""
    maintenance: Callable[[int, str], Any]
    """The 503 app for a migrating tenant, given ``Retry-After`` seconds and the body."""
    watch: Callable[[Any, str, Callable[[str], None]], Any]
    """``watch(app, tenant, served)``: ``app``, calling ``served(tenant)`` on a success."""


class Dispatcher:
    """Decides for hosts not in :attr:`entries` and remembers the answers."""

    def __init__(
        self,
        *,
        view: StateView,
        resolver: TenantResolver,
        targets: Mapping[str, Any],
        default: str,
        flavour: Flavour,
        maintenance: Any,
        overrides: Overrides,
        registrar: Registrar | None,
        cache_size: int,
        clock: Clock,
    ) -> None:
        #: Raw Host value -> entry; cleared in place, never replaced (routers hold it).
        self.entries: dict[Any, Entry] = {}
        self._view = view
        self._resolver = resolver
        self._targets = dict(targets)
        self._default = default
        self._flavour = flavour
        self._maintenance = maintenance
        self._overrides = overrides
        self._registrar = registrar
        self._cache_size = cache_size
        self._clock = clock
        self._generation = 0
        self._warned_unmounted: set[str] = set()

    def target(self, version: str) -> Any:
        """The app requests for ``version`` are handed to."""
        return self._targets[version]

    def drop(self) -> None:
        """Forget every decision (called from any thread)."""
        self._generation += 1
        self.entries.clear()

    def decide(self, policy: Policy, tenant: str | None, record: TenantRecord | None) -> Decision:
        """The decision for ``tenant``, as served here: a version nobody mounts here becomes
        the default (counted as a store error, logged once per version)."""
        return self._mounted(self._decide(policy, tenant, record))

    def _decide(self, policy: Policy, tenant: str | None, record: TenantRecord | None) -> Decision:
        override = self._overrides.get(tenant)
        return decide(policy, record, self._default, override=override, now=self._clock.time())

    def miss(self, key: Any, raw: str) -> Entry:
        """Decide for a host not in the cache (reading the store, bounded by its timeout)."""
        generation = self._generation
        tenant, rejected = self._resolve(raw)
        if rejected is not None:
            return self._remember(key, generation, rejected)
        record = None if tenant is None else self._view.tenant(tenant)
        return self._settle(key, generation, tenant, record)

    async def miss_async(self, key: Any, raw: str) -> Entry:
        """:meth:`miss` for an event loop: a slow store never blocks the loop."""
        generation = self._generation
        tenant, rejected = self._resolve(raw)
        if rejected is not None:
            return self._remember(key, generation, rejected)
        record = None if tenant is None else await self._view.tenant_async(tenant)
        return self._settle(key, generation, tenant, record)

    def _resolve(self, raw: str) -> tuple[str | None, Entry | None]:
        """The tenant for a raw Host value, or the 400 entry when the host is rejected."""
        try:
            return self._resolver(parse_host(raw)), None
        except InvalidHostError as exc:
            return None, (None, None, self._flavour.bad_request(str(exc)))

    def _mounted(self, decision: Decision) -> Decision:
        if decision.version in self._targets:
            return decision
        self._view.count_error()
        if decision.version not in self._warned_unmounted:
            self._warned_unmounted.add(decision.version)
            log.warning(
                "cohortroute: the store names version %r, which is not mounted here (mounted: %s); "
                "serving %r instead. Mount it, or fix the pin/rule/rollout that names it.",
                decision.version,
                ", ".join(self._targets),
                self._default,
            )
        return Decision(
            decision.tenant,
            self._default,
            Reason.DEFAULT,
            bucket=decision.bucket,
            detail=f"{decision.version} is not mounted here",
        )

    def _settle(
        self, key: Any, generation: int, tenant: str | None, record: TenantRecord | None
    ) -> Entry:
        """Decide from the record read on a miss, and cache the entry unless it is a guess."""
        stale = False
        if tenant is not None and record is None:
            # The store failed and nothing is known: the default now, and ask again next time.
            record, stale = TenantRecord(tenant), True
        decided = self._view.guard(self._decide(self._view.policy, tenant, record), record)
        decision = self._mounted(decided)
        if decided.maintenance:
            entry: Entry = (decision, tenant, self._maintenance)
        else:
            target = self._targets[decision.version]
            registrar = self._registrar
            if (
                not stale
                and registrar is not None
                and tenant is not None
                and record is not None
                and not record.registered
            ):
                target = self._flavour.watch(target, tenant, registrar.add)
            entry = (decision, tenant, target)
        if stale:
            return entry
        return self._remember(key, generation, entry)

    def _remember(self, key: Any, generation: int, entry: Entry) -> Entry:
        entries = self.entries
        if len(entries) >= self._cache_size:
            entries.clear()  # start over rather than evict one by one: O(1) and bounded
        if generation == self._generation:
            entries[key] = entry  # not when a drop raced with this miss: it may be stale
        return entry

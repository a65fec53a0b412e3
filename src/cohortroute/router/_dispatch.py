"""The decision cache and the miss path, shared by the WSGI and ASGI routers.

A warm request is one ``dict.get`` on :attr:`Dispatcher.entries`, keyed by the raw Host value
(``str`` under WSGI, ``bytes`` under ASGI); an entry is ``(decision, tenant, target app)``, and
a rejected host's entry holds a ready-made 400 app, so bad hosts take the same path. Everything
else happens here on a miss: validate the host, resolve the tenant, read its record through the
:class:`~cohortroute.state_view.StateView`, decide, and pick the target (the mounted version,
the 503 answer while the tenant's data migrates, or the version wrapped to notice a tenant the
registry does not know yet).

An entry whose decision asked an assignment backend with a ``ttl`` expires: its deadline is
kept apart (:meth:`Dispatcher.expire`, run with the router's periodic refresh, whose next
check is brought forward to the earliest deadline), so a warm request still does one
``dict.get`` and nothing more. A decision with ``ttl=0`` is never cached.

When a request-aware assignment backend ranks above the backend that decided, the entry's
target is a per-request wrapper (:mod:`cohortroute.assign.request`) asking those backends on
each request: :meth:`Dispatcher.miss` builds the WSGI one, :meth:`Dispatcher.miss_async` the
ASGI one. Under ASGI a miss whose chain may wait on a backend with a ``timeout`` is decided on
a worker thread (anyio's, so asyncio and trio alike), never on the event loop.

The cache is a plain dict, bounded by starting over when full (``O(1)``, no per-hit
bookkeeping), and dropped whenever decisions may be stale. Entries computed while a drop raced
with them are not inserted (a generation counter), so a stale decision cannot outlive a drop.

Its memory is bounded whatever the Host: a Host longer than any valid one
(:data:`~cohortroute.tenancy.MAX_HOST_LENGTH`) is answered 400 before any other work and never
cached, at most :data:`MAX_REJECTED` rejected hosts are cached at a time (sharing one 400 app
per message), so a cached key is at most 260 characters and an entry costs at most about
:data:`ENTRY_BYTES` (the README's "Memory per worker" states the worst case).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from .._clock import Clock
from ..assign.chain import Chain, Outcome
from ..assign.request import RequestAwareASGI, RequestAwareWSGI
from ..assign.tokens import OverrideKeys
from ..assign.visitors import VisitorCookies, VisitorSample
from ..decision import Decision, Reason, served
from ..errors import InvalidHostError, ValidationError
from ..policy import Policy, TenantRecord, check_tenant_name
from ..state_view import StateView
from ..tenancy import MAX_HOST_LENGTH, SubdomainResolver, TenantResolver, is_ip, parse_host
from .overrides import Overrides
from .registration import Registrar

log = logging.getLogger(__name__)

#: An entry of the decision cache: (decision or None for a rejected host, tenant, target app).
Entry = tuple[Decision | None, str | None, Any]

#: Rejected hosts cached at a time (a flood of garbage Hosts is parsed again, never stored).
MAX_REJECTED = 1_000
#: Distinct 400 apps kept (one per message; a custom resolver's messages may be unbounded).
_MAX_BAD_REQUEST_APPS = 64
#: Measured upper bound of one cached host's memory: a 260-character key, the entry, its decision
#: and tenant, the dict slot, and the wrapper that notices a tenant to register
#: (tests/test_router_memory.py holds it to this). A host whose entry asks request-aware
#: assignment backends per request costs about 300 bytes more (the wrapper, the query it asks
#: with, the decision's longer detail); only routers with such backends have them.
ENTRY_BYTES = 1_100


@dataclass(frozen=True)
class Flavour:
    """What the miss path builds differently for WSGI and ASGI."""

    bad_request: Callable[[str], Any]
    """The 400 app for a rejected host, given the reason."""
    maintenance: Callable[[int, str], Any]
    """The 503 app for a migrating tenant, given ``Retry-After`` seconds and the body."""
    watch: Callable[[Any, str, Callable[[str], None]], Any]
    """``watch(app, tenant, served)``: ``app``, calling ``served(tenant)`` on a success."""
    signed_override: type
    """``signed_override(app, decision, keys, targets, clock, only=)``: ``app``, or the version
    a valid signed QA token names."""
    visitor_sampling: type
    """``visitor_sampling(app, decision, sample, cookies, targets)``: a no-tenant host's app
    sampling anonymous visitors by cookie."""


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
        chain: Chain,
        on_expiry: Callable[[float], None],
        override_keys: OverrideKeys | None = None,
        visitor_cookies: VisitorCookies | None = None,
    ) -> None:
        #: Raw Host value -> entry; cleared in place, never replaced (routers hold it).
        self.entries: dict[Any, Entry] = {}
        self._view = view
        self._resolver = resolver
        # Ours only answers labels parse_host validated; a custom one's answers are checked.
        self._check_tenants = not isinstance(resolver, SubdomainResolver)
        self._warned_resolver = False
        self._warned_ip_host = False
        self._targets = dict(targets)
        self._default = default
        self._flavour = flavour
        self._maintenance = maintenance
        self._overrides = overrides
        self._registrar = registrar
        self._cache_size = cache_size
        self._clock = clock
        self._generation = 0
        self._rejected = 0  # rejected hosts in ``entries``
        self._bad_requests: dict[str, Any] = {}
        self._too_long: Entry = (
            None,
            None,
            self._bad_request(
                f"Host header over {MAX_HOST_LENGTH} characters (a DNS name has at most 253)"
            ),
        )
        self._warned_unmounted: set[str] = set()
        self._chain = chain
        self._on_expiry = on_expiry
        self._expiry: dict[Any, float] = {}  # key -> monotonic deadline, for entries with a ttl
        self._override_keys = override_keys
        self._visitor_cookies = visitor_cookies

    def target(self, version: str) -> Any:
        """The app requests for ``version`` are handed to."""
        return self._targets[version]

    def drop(self) -> None:
        """Forget every decision (called from any thread)."""
        self._generation += 1
        self.entries.clear()
        self._expiry.clear()
        self._rejected = 0

    def forget(self, tenant: str) -> int:
        """Forget the decisions for ``tenant``'s hosts; returns how many were cached."""
        self._generation += 1  # a miss in flight for it must not cache what it read before
        entries = self.entries
        keys = [key for key, entry in list(entries.items()) if entry[1] == tenant]
        for key in keys:
            entries.pop(key, None)
            self._expiry.pop(key, None)
        return len(keys)

    def expire(self, now: float) -> float | None:
        """Drop the entries whose ttl ran out by ``now`` (monotonic); the next deadline."""
        expiry = self._expiry
        if not expiry:
            return None
        upcoming: float | None = None
        for key, deadline in list(expiry.items()):
            if deadline <= now:
                expiry.pop(key, None)
                self.entries.pop(key, None)
            elif upcoming is None or deadline < upcoming:
                upcoming = deadline
        return upcoming

    def decide(self, policy: Policy, tenant: str | None, record: TenantRecord | None) -> Decision:
        """The decision for ``tenant``, as served here: a version not mounted here becomes the
        store's default, or this router's when that is not mounted either (reason
        ``unmounted``; counted as a store error, logged once per version), and a tenant the
        router cannot vouch for mid-migration gets ``maintenance`` (503)."""
        return self._decide(policy, tenant, record)[0]

    def _decide(
        self, policy: Policy, tenant: str | None, record: TenantRecord | None
    ) -> tuple[Decision, Outcome]:
        """:meth:`decide`, and the chain's outcome (its ttl: how long the decision may be
        cached, None: until a drop; the request-aware backends to ask per request)."""
        override = self._overrides.get(tenant)
        outcome = self._chain.decide(
            policy, record, self._default, override=override, now=self._clock.time()
        )
        decided = self._view.guard(outcome.decision, record)
        return self._mounted(policy, decided), outcome

    def miss(self, key: str | bytes, waited: float = 0.0) -> Entry:
        """Decide for a host not in the cache (reading the store, bounded by its timeout).

        ``key`` is the raw Host value: ``str`` under WSGI, ``bytes`` (Latin-1) under ASGI.
        ``waited``: seconds this request already waited for the store (a refresh), taken off
        the look-up's ``lookup_timeout`` so that the request waits at most that in all.
        """
        if len(key) > MAX_HOST_LENGTH:
            return self._too_long  # before any other work, and never cached
        generation = self._generation
        tenant, rejected = self._resolve(key)
        if rejected is not None:
            return self._remember_rejected(key, generation, rejected)
        record = None if tenant is None else self._view.tenant(tenant, waited)
        return self._settle(key, generation, tenant, record, RequestAwareWSGI)

    async def miss_async(self, key: str | bytes, waited: float = 0.0) -> Entry:
        """:meth:`miss` for an event loop: a slow store or a backend with a ``timeout`` never
        blocks the loop (the decision is then made on a worker thread)."""
        if len(key) > MAX_HOST_LENGTH:
            return self._too_long
        generation = self._generation
        tenant, rejected = self._resolve(key)
        if rejected is not None:
            return self._remember_rejected(key, generation, rejected)
        record = None if tenant is None else await self._view.tenant_async(tenant, waited)
        if tenant is not None and self._chain.may_block:
            return await anyio.to_thread.run_sync(
                self._settle, key, generation, tenant, record, RequestAwareASGI
            )
        return self._settle(key, generation, tenant, record, RequestAwareASGI)

    def _resolve(self, key: str | bytes) -> tuple[str | None, Entry | None]:
        """The tenant for a raw Host value, or the 400 entry when the host is rejected."""
        raw = key if isinstance(key, str) else key.decode("latin-1")
        try:
            host = parse_host(raw)
            tenant = self._resolver(host)
            if tenant is not None and self._check_tenants:
                tenant = self._checked_tenant(tenant)
        except InvalidHostError as exc:
            return None, (None, None, self._bad_request(str(exc)))
        if tenant is None and not self._warned_ip_host and is_ip(host):
            self._warn_ip_host(raw)
        return tenant, None

    def _warn_ip_host(self, raw: str) -> None:
        """Say once what an IP-address Host most likely means: a proxy that drops the Host.

        Behind ``proxy_pass http://127.0.0.1:8000`` without ``proxy_set_header Host $host``
        every request arrives with the upstream's address as its Host, has no tenant, and is
        served the default: every customer silently on the stable version.
        """
        self._warned_ip_host = True
        log.warning(
            "cohortroute: a request arrived with Host %r, an IP address: it has no tenant and is "
            "served the default version. If most requests look like this, the proxy in front "
            "does not forward the Host header: set `proxy_set_header Host $host;` (nginx) "
            "or `ProxyPreserveHost On` (Apache); health probes by IP can use `extra_hosts=` with a "
            "name instead.",
            raw,
        )

    def _checked_tenant(self, tenant: str) -> str:
        """A custom resolver's answer as a tenant name (lower case), or 400 when it is none."""
        try:
            return check_tenant_name(tenant)
        except ValidationError as exc:
            if not self._warned_resolver:
                self._warned_resolver = True
                log.error("cohortroute: the tenant_resolver answered %s; those hosts get 400", exc)
            raise InvalidHostError("this host resolves to an invalid tenant name") from None

    def _bad_request(self, message: str) -> Any:
        """The 400 app for ``message``: one per message, so rejected hosts share it."""
        app = self._bad_requests.get(message)
        if app is None:
            app = self._flavour.bad_request(message)
            if len(self._bad_requests) < _MAX_BAD_REQUEST_APPS:
                self._bad_requests[message] = app
        return app

    def _mounted(self, policy: Policy, decision: Decision) -> Decision:
        result = served(decision, self._targets, policy.default, self._default)
        if result is decision:
            return decision
        self._view.count_error()
        if decision.version not in self._warned_unmounted:
            self._warned_unmounted.add(decision.version)
            by_backend = decision.reason is Reason.BACKEND and decision.backend
            log.warning(
                "cohortroute: %s names version %r, which is not mounted here (mounted: %s); "
                "serving %r instead. Mount it, or fix %s.",
                f"assignment backend {decision.backend!r}" if by_backend else "the store",
                decision.version,
                ", ".join(self._targets),
                result.version,
                "what that backend answers" if by_backend else "the pin/rule/rollout that names it",
            )
        return result

    def _settle(
        self,
        key: Any,
        generation: int,
        tenant: str | None,
        record: TenantRecord | None,
        per_request: type[RequestAwareWSGI] | type[RequestAwareASGI],
    ) -> Entry:
        """Decide from the record read on a miss, and cache the entry unless it is a guess;
        ``per_request`` wraps the target when request-aware backends are to be asked."""
        stale = False
        if tenant is not None and record is None:
            # The store failed and nothing is known: the default now, and ask again next time.
            record, stale = TenantRecord(tenant), True
        decision, outcome = self._decide(self._view.policy, tenant, record)
        ttl = outcome.ttl
        if decision.maintenance:
            entry: Entry = (decision, tenant, self._maintenance)
        else:
            target = self._targets[decision.version]
            if outcome.per_request and outcome.query is not None:
                # Inside a signed override's wrapper: the override ranks first.
                target = per_request(
                    target,
                    self._chain,
                    outcome.per_request,
                    outcome.query,
                    decision,
                    self._targets,
                    self._clock,
                )
            keys, signed = self._override_keys, self._flavour.signed_override
            if keys is not None and tenant is not None:
                rollout = self._view.policy.rollout
                only = decision.version if rollout is not None and rollout.gated else None
                target = signed(target, decision, keys, self._targets, self._clock.time, only=only)
            if tenant is None and self._visitor_cookies is not None:
                target = self._sampling(target, decision)
            registrar = self._registrar
            # Also when the store was too slow to say (stale): the tenant may be served the
            # candidate by its bucket, and must be registered for the ratchet to keep it there.
            # Registering an already registered tenant writes nothing.
            if (
                registrar is not None
                and tenant is not None
                and record is not None
                and not record.registered
            ):
                target = self._flavour.watch(target, tenant, registrar.add)
            entry = (decision, tenant, target)
        if stale or ttl == 0:
            return entry
        self._remember(key, generation, entry)
        if ttl is not None and key in self.entries:
            deadline = self._clock.monotonic() + ttl
            self._expiry[key] = deadline
            self._on_expiry(deadline)
        return entry

    def _sampling(self, target: Any, decision: Decision) -> Any:
        """``target`` for a no-tenant host, sampling visitors while a sample is set."""
        sample = VisitorSample.from_policy(self._view.policy.visitors)
        wrap = self._flavour.visitor_sampling
        if sample is None or sample.version not in self._targets:
            return target
        return wrap(target, decision, sample, self._visitor_cookies, self._targets)

    def _remember_rejected(self, key: Any, generation: int, entry: Entry) -> Entry:
        """Cache a rejected host, unless :data:`MAX_REJECTED` of them are cached already."""
        if self._rejected >= MAX_REJECTED:
            return entry
        self._rejected += 1
        return self._remember(key, generation, entry)

    def _remember(self, key: Any, generation: int, entry: Entry) -> Entry:
        entries = self.entries
        if len(entries) >= self._cache_size:
            entries.clear()  # start over rather than evict one by one: O(1) and bounded
            self._expiry.clear()
            self._rejected = 0
        if generation == self._generation:
            entries[key] = entry  # not when a drop raced with this miss: it may be stale
        return entry

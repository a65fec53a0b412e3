"""CohortRouter: construction, its options, and the Python API both flavours share.

``CohortRouter(apps=...)`` returns a :class:`~cohortroute.router.wsgi.WSGICohortRouter` or an
:class:`~cohortroute.router.asgi.ASGICohortRouter`; this module holds what they have in common:
checking the options, wiring the collaborators (the :class:`~cohortroute.state_view.StateView`,
the decision cache in :mod:`._dispatch`, test overrides, tenant registration, the timed-plan
watch), the refresh that keeps the cache honest, and :meth:`~CohortRouter.explain` /
:meth:`~CohortRouter.status` / :meth:`~CohortRouter.close`.

Invalidation needs no background thread, so a router is fork-safe under ``gunicorn
--preload``: at most once per refresh interval a request asks the store for its revision and
the cache is dropped when it moved; writes through the same store object notify at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .. import _forksafe, fail_closed, version_needs
from .._clock import SYSTEM, Clock
from ..assign import visitors as visitor_cookies
from ..assign.backend import AssignmentBackend
from ..assign.chain import Chain
from ..assign.tokens import OverrideKeys
from ..decision import Decision
from ..errors import ConfigurationError
from ..migrations import Migrations
from ..policy import check_tenant_name, check_version_name
from ..state_view import StateView
from ..store.base import Store, open_store
from ..tenancy import DEFAULT_RESERVED, SubdomainResolver, TenantResolver
from ..upstream import target as upstream
from ._dispatch import Dispatcher, Entry, Flavour
from .interfaces import kind_of, unwrapped
from .overrides import Overrides
from .registration import Registrar
from .timed_plan import TimedPlanWatch

if TYPE_CHECKING:
    from ..signals.config import SignalsConfig

DECISION_KEY = "cohortroute.decision"
TENANT_KEY = "cohortroute.tenant"

Interface = Literal["auto", "wsgi", "asgi"]


def is_asgi_app(app: object) -> bool:
    """True for an ASGI application (ASGI 3, ASGI 2, or declared with ``cohortroute.asgi()``
    or ``asgi2()``); :mod:`.interfaces` tells them apart."""
    return kind_of(app) != "wsgi"


class CohortRouter:
    """Serve several mounted versions of an app, each tenant on the version decided for it.

    ``CohortRouter(apps=...)`` returns a WSGI application when every version is WSGI, and an
    ASGI application when any version is ASGI (WSGI versions are then mounted through asgiref);
    ``interface="asgi"`` forces ASGI. Both expose the same Python API (:meth:`explain`,
    :attr:`store`, :meth:`status`, :meth:`close`). Every option is keyword-only.

    :param apps: version name -> WSGI or ASGI callable, e.g. ``{"2026.11": old, "2026.12": new}``.
    :param default: the version everybody gets unless something says otherwise; the first
        version when omitted. It seeds the store's default when the store has none; afterwards
        the store's default wins (``finalize`` changes it). A pin, rule or rollout naming a
        version not mounted here is served the store's default (this one when the store's is
        not mounted here either), with reason ``unmounted``.
    :param domains: the domains tenants live under: ``acme.example.com`` -> ``acme``.
    :param store: a store URL (``memory://``, ``sqlite:///state.db``, ``redis://...``) or Store.
    :param reserved: labels that are not tenants (``www`` by default).
    :param allow_unknown_hosts: serve hosts outside every domain the default instead of 400.
    :param extra_hosts: exact host names outside every domain served the default with reason
        ``no-tenant`` (any port), e.g. ``["localhost", "shop-svc"]`` for health probes; every
        other host outside the domains still gets 400. With ``domains`` only.
    :param tenant_resolver: replaces the domain rule: called with the validated, lower-cased host
        name (no port) and returns a tenant (one DNS label; anything else gets the host 400) or
        None; decisions are cached per host.
    :param cache_size: how many distinct hosts the decision cache holds before it starts over;
        each costs at most about 1.1 KB whatever the Host, so 22 MB at the default (the README's
        "Memory per worker" has the whole worst case).
    :param refresh_interval: seconds between revision checks with the store (the store's own
        default when None; changes made through this process are seen at once regardless).
        During a gated rollout, a router that cannot confirm the revision for this plus half of
        it answers the tenants the rollout can reach 503 (see :mod:`cohortroute.fail_closed`).
    :param lookup_timeout: the longest a request waits for a remote store (Redis, PostgreSQL)
        on a cache miss; a slower store gets the request the last-known or default decision.
    :param interface: ``"auto"`` (by the apps), ``"wsgi"`` or ``"asgi"``.
    :param migrations: the app's :class:`~cohortroute.migrations.Migrations`; sets the 503
        response (``Retry-After``, body) a tenant gets while its data migrates. Gating itself
        needs nothing here: it is in the store, so every router applies it.
    :param register_tenants: record the tenants this router serves in the store's registry
        (batched, once per tenant, off the request thread, 1 s after the first is served even
        if no request follows) so the rollout controller knows them. Only tenants the app
        answers with a status below 400 are recorded, so random subdomains the app 404s never
        are, and at most 1,000 new tenants per minute (``status()["registrations_dropped"]``
        counts the rest). Turn it off when tenants are imported instead.
    :param clock: where the router reads the time (refresh interval, registration delay, timed
        plans, the record cache's TTL); tests pass a :class:`cohortroute._clock.ManualClock`.
    :param signals: count every request per tenant and version and flush the counts to the
        store (``True``, or a :class:`~cohortroute.signals.SignalsConfig`); see docs/signals.md.
        The recorder is :attr:`signals` (None when off).
    :param assign: custom assignment backends (:mod:`cohortroute.assign`), asked after the pin
        and tag rules and before the rollout; list ``PIN``, ``TAG`` and ``ROLLOUT`` among them
        to choose another precedence, or pass a ready :class:`~cohortroute.assign.Chain`. The
        chain is :attr:`chain`; give it to the rollout controller so previews stay exact.
        See docs/assignment.md.
    :param override_keys: turn on signed QA overrides: key id -> secret (16 bytes or more).
        A request carrying a valid token (``cohortroute override mint``) in the
        ``X-Cohortroute-Override`` header or the ``cohortroute_override`` cookie is served the
        token's version (reason ``override``); bad, expired or foreign tokens are ignored and
        counted (``status()["override_tokens"]``). Off when None. WSGI and ASGI routers alike
        (a websocket's token rides in its handshake's header or cookie).
    :param visitor_key: turn on sampling of anonymous visitors (no tenant: apex, ``www``): the
        secret (16 bytes or more) signing the visitor cookie. The share and version are set
        with ``cohortroute visitors set``; see :mod:`cohortroute.assign.visitors`. WSGI and
        ASGI routers alike.
    :param visitor_cookie_max_age: the visitor cookie's lifetime in seconds (about 6 months).
    """

    _flavours: ClassVar[dict[str, type[CohortRouter]]] = {}
    _flavour: ClassVar[Flavour]

    def __init_subclass__(cls, *, interface: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if interface is not None:
            CohortRouter._flavours[interface] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> CohortRouter:
        # The options are checked by __init__ (whose signature type checkers read); here only
        # the flavour is picked.
        if cls is CohortRouter:
            apps = args[0] if args else kwargs.get("apps")
            interface = kwargs.get("interface", "auto")
            values = list(apps.values()) if isinstance(apps, Mapping) else []
            asgi = interface == "asgi" or (
                interface == "auto" and any(is_asgi_app(a) for a in values)
            )
            cls = CohortRouter._flavours["asgi" if asgi else "wsgi"]
        return object.__new__(cls)

    def __init__(
        self,
        apps: Mapping[str, Callable[..., Any]],
        *,
        default: str | None = None,
        domains: Iterable[str] | None = None,
        store: str | Store = "memory://",
        reserved: Iterable[str] = DEFAULT_RESERVED,
        allow_unknown_hosts: bool = False,
        extra_hosts: Iterable[str] = (),
        tenant_resolver: TenantResolver | None = None,
        cache_size: int = 20_000,
        refresh_interval: float | None = None,
        lookup_timeout: float = 0.05,
        interface: Interface = "auto",
        migrations: Migrations | None = None,
        register_tenants: bool = True,
        clock: Clock = SYSTEM,
        signals: bool | SignalsConfig = False,
        assign: Chain | Iterable[AssignmentBackend] = (),
        override_keys: Mapping[str, str | bytes] | None = None,
        visitor_key: str | bytes | None = None,
        visitor_cookie_max_age: float = visitor_cookies.MAX_AGE,
    ) -> None:
        if interface not in ("auto", "wsgi", "asgi"):
            raise ConfigurationError(
                f"interface must be 'auto', 'wsgi' or 'asgi', not {interface!r}"
            )
        self.apps: dict[str, Any] = _checked_apps(apps)
        self._check_interface(interface)
        # An Upstream(...) is a WSGI app; the ASGI router mounts its ASGI form instead.
        self._upstreams = upstream.upstreams_of(self.apps)  # closed with the router
        self.apps = upstream.mount(self.apps, asgi=is_asgi_app(self.__call__))
        if default is None:
            default = next(iter(self.apps))
        if default not in self.apps:
            raise ConfigurationError(
                f"default {default!r} is not one of the mounted versions: "
                f"{', '.join(self.apps)}; pass default= one of them"
            )
        self.default = default
        resolver = _resolver(tenant_resolver, domains, reserved, allow_unknown_hosts, extra_hosts)
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigurationError(f"cache_size must be an integer >= 1, not {cache_size!r}")
        self._store = open_store(store)
        interval = self._store.refresh_interval if refresh_interval is None else refresh_interval
        if interval < 0:
            raise ConfigurationError("refresh_interval must be >= 0 seconds")
        self._refresh_interval = float(interval)
        self._clock = clock
        self._monotonic = clock.monotonic
        self._next_check = 0.0  # the first request refreshes
        self._refresh_lock = threading.Lock()
        self._timed_plan = TimedPlanWatch()
        self._registrar = (
            Registrar(self._store, clock=clock, on_written=self._registered)
            if register_tenants
            else None
        )
        self._view = StateView(
            self._store,
            list(self.apps),
            default,
            on_change=self._drop_cache,
            lookup_timeout=lookup_timeout,
            clock=clock,
            horizon=fail_closed.horizon(self._refresh_interval),
        )
        self._overrides = Overrides(self.apps, on_change=self._drop_cache)
        #: The assignment backends every decision here goes through.
        self.chain = assign if isinstance(assign, Chain) else Chain(assign)
        self._override_keys = (
            None if override_keys is None else OverrideKeys(override_keys, list(self.apps))
        )
        self._visitor_cookies = (
            None
            if visitor_key is None
            else visitor_cookies.VisitorCookies(visitor_key, visitor_cookie_max_age)
        )
        declared = migrations if migrations is not None else Migrations()
        from ..signals.wrappers import wrap_versions  # here: signals imports this module

        targets, self.signals = wrap_versions(self._mount(), signals, self._store, clock)
        self._dispatch = Dispatcher(
            view=self._view,
            resolver=resolver,
            targets=targets,
            default=default,
            flavour=self._flavour,
            maintenance=self._flavour.maintenance(declared.retry_after, declared.maintenance_body),
            overrides=self._overrides,
            registrar=self._registrar,
            cache_size=cache_size,
            clock=clock,
            chain=self.chain,
            on_expiry=self._expires_at,
            override_keys=self._override_keys,
            visitor_cookies=self._visitor_cookies,
        )
        self._entries: dict[Any, Entry] = self._dispatch.entries
        _forksafe.register(self, after_in_child=CohortRouter._after_fork)
        self._view.refresh()  # records our versions; never fails, at worst starts degraded
        if migrations is not None:  # so `rollout start` knows which versions need migrated data
            version_needs.record(self._store, migrations, list(self.apps))
        self._store.subscribe(self._on_store_change)

    if TYPE_CHECKING:
        # Which flavour CohortRouter(...) returns depends on the apps, so a type checker sees
        # a CohortRouter: callable as a WSGI or an ASGI app (each flavour says which).
        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    # --- the Python API ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store this router reads: pin, tag, set rules and run rollouts through it."""
        return self._store

    def explain(self, tenant: str | None) -> Decision:
        """The decision a request for ``tenant`` would get now, read fresh from the store:
        exactly what this router serves, including a version it does not mount (reason
        ``unmounted``) and a migrating tenant (``maintenance``, answered 503).

        Raises :class:`~cohortroute.errors.ValidationError` for a name no Host can resolve to.
        """
        name = None if tenant is None else check_tenant_name(tenant)
        record = None if name is None else self._store.tenant(name)
        return self._dispatch.decide(self._store.policy(), name, record)

    def close(self) -> None:
        """Stop this router's store look-up and registration threads and close its store
        connections and the connection pools of the :class:`~cohortroute.Upstream` versions it
        mounts.

        The router keeps working if it is called again (everything reopens lazily); call this
        when a process shuts down or a test is done with a router.
        """
        self._view.close()
        self.chain.close()
        if self._registrar is not None:
            self._registrar.close()
        if self.signals is not None:
            self.signals.close()  # writes what is counted
        try:
            for mounted in self._upstreams:
                mounted.close()  # requests in flight finish on the pools they hold
        finally:
            self._store.close()

    def status(self) -> dict[str, Any]:
        """Health of this router's view of the store: revision, degraded flag, last error,
        whether it fails closed (``fail_closed``), how many tenants the registration rate
        cap dropped (``registrations_dropped``) and the errors and timeouts counted per
        assignment backend (``assign_errors``), the signed QA override tokens seen
        (``override_tokens``) and the anonymous visitors' sample (``visitors``; None when this
        router does not sample).

        It reflects the last contact with the store, which requests drive (at most once per
        refresh interval); a health check that sends no request through the router sees the
        state as of the last request.
        """
        return {
            "revision": self._view.revision,
            "degraded": self._view.degraded,
            "last_error": self._view.last_error,
            "store_errors": self._view.errors,
            "cached_hosts": len(self._entries),
            "fail_closed": self._view.holding,
            "registrations_dropped": 0 if self._registrar is None else self._registrar.dropped,
            "versions": list(self.apps),
            "default": self._view.policy.default or self.default,
            "assign_errors": dict(self.chain.errors),
            "visitors": (
                dict(self._view.policy.visitors) if self._visitor_cookies is not None else None
            ),
            "override_tokens": (
                {} if self._override_keys is None else dict(self._override_keys.counts)
            ),
        }

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget the cached decision for ``tenant`` (every cached decision when None), so the
        next request asks the assignment backends again: call it when the data a backend reads
        changed (a customer changed plan). A store write does this by itself.

        .. versionadded:: 0.2
        """
        if tenant is None:
            self._drop_cache()
        else:
            self._dispatch.forget(check_tenant_name(tenant))

    # --- what the flavours provide -------------------------------------------------------------

    def _check_interface(self, interface: Interface) -> None:
        """Refuse an ``interface`` this flavour cannot serve ``self.apps`` with."""

    def _mount(self) -> dict[str, Any]:
        """Version name -> the target a request is handed to."""
        return {name: unwrapped(app) for name, app in self.apps.items()}

    # --- keeping the cache honest -------------------------------------------------------------

    def _after_fork(self) -> None:
        # A refresh in flight in another thread at fork time would leave this lock held in the
        # child forever, and the child would never refresh.
        self._refresh_lock = threading.Lock()

    def _on_store_change(self) -> None:
        self._next_check = 0.0

    def _drop_cache(self) -> None:
        self._dispatch.drop()

    def _expires_at(self, deadline: float) -> None:
        """A cached decision expires at ``deadline`` (monotonic): check no later than that."""
        if deadline < self._next_check:
            self._next_check = deadline

    def _registered(self, tenants: set[str]) -> None:
        """The registrar wrote ``tenants``: their cached entries stop watching the app's answers.

        Registration changes no decision, so the cache is kept; only the watch (a call per
        request) is taken off, in place.
        """
        entries = self._entries
        for key, (decision, tenant, app) in list(entries.items()):
            inner = getattr(app, "watched_app", None)
            if tenant in tenants and inner is not None and entries.get(key) is not None:
                entries[key] = (decision, tenant, inner)

    def _refresh(self, now: float, wait: bool = True) -> None:
        """Ask the store whether decisions moved on (at most once per refresh interval)."""
        if not self._refresh_lock.acquire(blocking=False):
            return  # another thread is refreshing; serve from the cache meanwhile
        try:
            view = self._view
            self._next_check = now + self._refresh_interval
            hold = view.hold_at()
            # Past the fail-closed horizon, wait for the answer (bounded by lookup_timeout) even
            # on an event loop: a router idle for a while must not 503 only for having been idle.
            view.refresh(wait or (hold is not None and now >= hold))  # drops the cache on change
            view.check_horizon(now)
            hold = view.hold_at()
            if hold is not None and hold > now:
                self._next_check = min(self._next_check, hold)
            passed, step_in = self._timed_plan.check(self._view.policy.rollout, self._clock.time())
            if passed:
                self._drop_cache()
            if step_in is not None:
                self._next_check = min(self._next_check, now + step_in)
            expires = self._dispatch.expire(now)
            if expires is not None:
                self._next_check = min(self._next_check, expires)
        finally:
            self._refresh_lock.release()


def _checked_apps(apps: object) -> dict[str, Any]:
    if not isinstance(apps, Mapping) or not apps:
        raise ConfigurationError(
            "apps must be a non-empty mapping of version name to app, e.g. "
            "apps={'2026.11': old_app, '2026.12': new_app}"
        )
    for name, app in apps.items():
        check_version_name(name)
        if not callable(app):
            raise ConfigurationError(f"apps[{name!r}] is not a WSGI or ASGI callable: {app!r}")
    return dict(apps)


def _resolver(
    tenant_resolver: TenantResolver | None,
    domains: Iterable[str] | None,
    reserved: Iterable[str],
    allow_unknown_hosts: bool,
    extra_hosts: Iterable[str],
) -> TenantResolver:
    if tenant_resolver is not None:
        if not callable(tenant_resolver):
            raise ConfigurationError("tenant_resolver must be a callable(host) -> tenant")
        if extra_hosts:
            raise ConfigurationError(
                "extra_hosts works with domains=; a tenant_resolver decides every host itself: "
                "return None from it for the hosts to serve with no tenant"
            )
        return tenant_resolver
    if domains is None:
        raise ConfigurationError(
            "give domains=['example.com'] (tenants are subdomains of it) or a tenant_resolver"
        )
    return SubdomainResolver(
        domains,
        reserved=reserved,
        allow_unknown_hosts=allow_unknown_hosts,
        extra_hosts=extra_hosts,
    )

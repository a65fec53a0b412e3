"""CohortRouter: the WSGI and ASGI entry points and the dispatch (the hot path).

Per request: Host -> tenant -> decision -> mounted app. A warm request is one dictionary look-up
keyed by the raw Host value plus a clock read; everything else happens on a cache miss. The
cache is bounded (a flood of random subdomains cannot grow memory without bound) and dropped
whenever the store's revision moves, which the router confirms at most once per refresh interval
-- no background thread, so it is fork-safe under ``gunicorn --preload``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from time import monotonic
from typing import TYPE_CHECKING, Any

from asgiref.wsgi import WsgiToAsgi, WsgiToAsgiInstance

from .cache import StateView
from .decision import Decision, Reason, decide
from .errors import ConfigurationError, InvalidHostError, UnknownVersionError
from .migrations import Migrations, maintenance_asgi, maintenance_wsgi
from .policy import TenantRecord, check_version_name
from .store.base import Store, open_store
from .tenancy import (
    DEFAULT_RESERVED,
    SubdomainResolver,
    TenantResolver,
    is_valid_label,
    parse_host,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("cohortroute")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DECISION_KEY = "cohortroute.decision"
TENANT_KEY = "cohortroute.tenant"

# An entry of the decision cache: (decision or None for a rejected host, tenant, target app).
_Entry = tuple["Decision | None", "str | None", Any]

# Rollout controller (issue 5): at most this many served-but-unregistered tenants wait for the
# next batched registration write; more are picked up again after the next cache drop.
_MAX_UNREGISTERED = 10_000
# ... and they are written at least this many seconds after the first of them was served, so
# newly seen tenants share one write (each write makes every router drop its cache).
REGISTER_DELAY = 1.0


def is_asgi_app(app: object) -> bool:
    """True for an ASGI 3 application: a coroutine function or an object with ``async __call__``."""
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - we need the method, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


class CohortRouter:
    """Serve several mounted versions of an app, each tenant on the version decided for it.

    ``CohortRouter(apps=...)`` returns a WSGI application when every version is WSGI, and an
    ASGI application when any version is ASGI (WSGI versions are then mounted through asgiref);
    ``interface="asgi"`` forces ASGI. Both expose the same Python API (:meth:`explain`,
    :attr:`store`, :meth:`status`).

    :param apps: version name -> WSGI or ASGI callable, e.g. ``{"2026.11": old, "2026.12": new}``.
    :param default: the version everybody gets unless something says otherwise; the first
        version when omitted. It seeds the store's default when the store has none; afterwards
        the store's default wins (``finalize`` changes it), and this one is the fallback when the
        store names a version that is not mounted here.
    :param domains: the domains tenants live under: ``acme.example.com`` -> ``acme``.
    :param store: a store URL (``memory://``, ``sqlite:///state.db``, ``redis://...``) or Store.
    :param reserved: labels that are not tenants (``www`` by default).
    :param allow_unknown_hosts: serve hosts outside every domain the default instead of 400.
    :param tenant_resolver: replaces the domain rule: called with the validated, lower-cased host
        name (no port) and returns a tenant or None; decisions are cached per host.
    :param cache_size: how many distinct hosts the decision cache holds before it starts over.
    :param refresh_interval: seconds between revision checks with the store (the store's own
        default when None; changes made through this process are seen at once regardless).
    :param lookup_timeout: the longest a request waits for a remote store (Redis, PostgreSQL)
        on a cache miss; a slower store gets the request the last-known or default decision.
    :param migrations: the app's :class:`~cohortroute.migrations.Migrations`; sets the 503
        response (``Retry-After``, body) a tenant gets while its data migrates. Gating itself
        needs nothing here: it is in the store, so every router applies it.
    :param register_tenants: record the tenants this router serves in the store's registry
        (batched, once per tenant, off the request thread) so the rollout controller knows them.
        Only tenants the app answers with a status below 400 are recorded, so random
        subdomains the app 404s never are. Turn it off when tenants are imported instead.
    """

    def __new__(cls, apps: Mapping[str, Any], *args: Any, **kwargs: Any) -> CohortRouter:
        if cls is CohortRouter:
            interface = kwargs.get("interface", "auto")
            values = list(apps.values()) if isinstance(apps, Mapping) else []
            asgi = interface == "asgi" or (
                interface == "auto" and any(is_asgi_app(a) for a in values)
            )
            cls = ASGICohortRouter if asgi else WSGICohortRouter
        return object.__new__(cls)

    def __init__(
        self,
        apps: Mapping[str, Any],
        *,
        default: str | None = None,
        domains: Iterable[str] | None = None,
        store: str | Store = "memory://",
        reserved: Iterable[str] = DEFAULT_RESERVED,
        allow_unknown_hosts: bool = False,
        tenant_resolver: TenantResolver | None = None,
        cache_size: int = 100_000,
        refresh_interval: float | None = None,
        lookup_timeout: float = 0.05,
        interface: str = "auto",
        migrations: Migrations | None = None,
        register_tenants: bool = True,
    ) -> None:
        if interface not in ("auto", "wsgi", "asgi"):
            raise ConfigurationError(
                f"interface must be 'auto', 'wsgi' or 'asgi', not {interface!r}"
            )
        if not isinstance(apps, Mapping) or not apps:
            raise ConfigurationError(
                "apps must be a non-empty mapping of version name to app, e.g. "
                "apps={'2026.11': old_app, '2026.12': new_app}"
            )
        for name, app in apps.items():
            check_version_name(name)
            if not callable(app):
                raise ConfigurationError(f"apps[{name!r}] is not a WSGI or ASGI callable: {app!r}")
        self.apps: dict[str, Any] = dict(apps)
        if default is None:
            default = next(iter(self.apps))
        if default not in self.apps:
            raise ConfigurationError(
                f"default {default!r} is not one of the mounted versions: "
                f"{', '.join(self.apps)}; pass default= one of them"
            )
        self.default = default
        if tenant_resolver is not None:
            if not callable(tenant_resolver):
                raise ConfigurationError("tenant_resolver must be a callable(host) -> tenant")
            self._resolver: TenantResolver = tenant_resolver
        else:
            if domains is None:
                raise ConfigurationError(
                    "give domains=['example.com'] (tenants are subdomains of it) "
                    "or a tenant_resolver"
                )
            self._resolver = SubdomainResolver(
                domains, reserved=reserved, allow_unknown_hosts=allow_unknown_hosts
            )
        if cache_size < 1:
            raise ConfigurationError("cache_size must be at least 1")
        self._store = open_store(store)
        interval = self._store.refresh_interval if refresh_interval is None else refresh_interval
        if interval < 0:
            raise ConfigurationError("refresh_interval must be >= 0 seconds")
        self._refresh_interval = float(interval)
        self._cache: dict[Any, _Entry] = {}
        self._cache_size = cache_size
        self._generation = 0
        self._next_check = 0.0
        self._refresh_lock = threading.Lock()
        self._overrides: dict[str | None, str] = {}
        self._warned_unmounted: set[str] = set()
        self._targets: dict[str, Any] = self._mount()
        # Rollout controller (issue 5): the 503 + Retry-After answer for migrating tenants, the
        # tenants waiting for the batched registry write, and the next timed-plan step (Unix time).
        self._maintenance_target = self._maintenance(
            30 if migrations is None else migrations.retry_after,
            Migrations().maintenance_body if migrations is None else migrations.maintenance_body,
        )
        self._register_tenants = register_tenants
        self._unregistered: set[str] = set()
        self._registering = threading.Lock()
        self._register_due: float | None = None
        self._step_at: float | None = None
        self._view = StateView(
            self._store,
            list(self.apps),
            default,
            on_change=self._drop_cache,
            lookup_timeout=lookup_timeout,
        )
        self._view.refresh()  # records our versions; never fails, at worst starts degraded
        self._store.subscribe(self._on_store_change)

    # --- the Python API ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The store this router reads: pin, tag, set rules and run rollouts through it."""
        return self._store

    def explain(self, tenant: str | None) -> Decision:
        """The decision a request for ``tenant`` would get now, read fresh from the store."""
        name = None if tenant is None else tenant.lower()
        record = None if name is None else self._store.tenant(name)
        return self._checked(
            decide(self._store.policy(), record, self.default, override=self._override(name))
        )

    def close(self) -> None:
        """Stop this router's store look-up threads and close its store connections.

        The router keeps working if it is called again (everything reopens lazily); call this
        when a process shuts down or a test is done with a router.
        """
        self._view.close()
        self._store.close()

    def status(self) -> dict[str, Any]:
        """Health of this router's view of the store: revision, degraded flag, last error.

        It reflects the last contact with the store, which requests drive (at most once per
        refresh interval); a health check that sends no request through the router sees the
        state as of the last request.
        """
        return {
            "revision": self._view.revision,
            "degraded": self._view.degraded,
            "last_error": self._view.last_error,
            "store_errors": self._view.errors,
            "cached_hosts": len(self._cache),
            "versions": list(self.apps),
            "default": self._view.policy.default or self.default,
        }

    # --- test overrides (used by cohortroute.testing) -------------------------------------------

    def _set_override(self, version: str | None, tenant: str | None = None) -> str | None:
        """Force ``version`` for one tenant (or every request when None); returns the previous."""
        if version is not None and version not in self.apps:
            raise UnknownVersionError(version, self.apps)
        key = None if tenant is None else tenant.lower()
        previous = self._overrides.get(key)
        if version is None:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = version
        self._drop_cache()
        return previous

    def _override(self, tenant: str | None) -> str | None:
        if not self._overrides:
            return None
        return self._overrides.get(tenant, self._overrides.get(None))

    # --- the decision machinery (cold path) ----------------------------------------------------

    def _mount(self) -> dict[str, Any]:
        return dict(self.apps)

    def _reject(self, message: str) -> Any:
        raise NotImplementedError

    def _maintenance(self, retry_after: int, body: str) -> Any:
        raise NotImplementedError

    def _on_store_change(self) -> None:
        self._next_check = 0.0

    def _drop_cache(self) -> None:
        self._generation += 1
        self._cache.clear()

    def _refresh(self, now: float, wait: bool = True) -> None:
        if not self._refresh_lock.acquire(blocking=False):
            return  # another thread is refreshing; serve from the cache meanwhile
        try:
            self._next_check = now + self._refresh_interval
            self._view.refresh(wait)  # calls _drop_cache when the revision moved
            self._rollout_upkeep(now)  # rollout controller (issue 5)
        finally:
            self._refresh_lock.release()

    def _rollout_upkeep(self, now: float) -> None:
        """Rollout controller (issue 5): timed-plan steps and the batched tenant registry.

        A timed plan moves on at a known instant without any store write, so decisions made
        before it are dropped right then, and the next check is scheduled for it. Tenants
        served but unknown to the registry are recorded in one write, off the request thread.
        """
        rollout = self._view.policy.rollout
        step_at = self._step_at
        if rollout is None or not rollout.auto:
            self._step_at = None
        else:
            wall = time.time()
            if step_at is not None and wall >= step_at:
                self._drop_cache()
            self._step_at = rollout.next_change(wall)
            if self._step_at is not None:
                self._next_check = min(self._next_check, now + max(self._step_at - wall, 0.0))
        due = self._register_due
        if due is not None and now >= due and not self._registering.locked():
            self._register_due = None
            threading.Thread(
                target=self._flush_registrations, name="cohortroute-register", daemon=True
            ).start()

    def _flush_registrations(self) -> None:
        """Record the tenants waiting for registration in one batched write (issue 5)."""
        with self._registering:
            pending, self._unregistered = self._unregistered, set()
            # A custom tenant_resolver may return names the registry cannot hold: skip those.
            pending = {name for name in pending if is_valid_label(name.lower())}
            if not pending:
                return
            try:
                self._store.register_tenants(sorted(pending), actor="cohortroute-router")
            except Exception as exc:  # never fail anything over the registry; retry later
                log.warning("cohortroute: could not register %d tenants: %s", len(pending), exc)
                if len(self._unregistered) < _MAX_UNREGISTERED:
                    self._unregistered |= pending
                    self._register_due = monotonic() + REGISTER_DELAY

    def _queue_registration(self, tenant: str) -> None:
        """The app served ``tenant`` successfully: record it with the next batched write."""
        if tenant in self._unregistered or len(self._unregistered) >= _MAX_UNREGISTERED:
            return
        self._unregistered.add(tenant)
        if self._register_due is None:
            self._register_due = monotonic() + REGISTER_DELAY

    def _watch(self, app: Any, tenant: str) -> Any:
        """Wrap ``app`` to queue ``tenant`` for registration when it answers below 400."""
        raise NotImplementedError

    def _checked(self, decision: Decision) -> Decision:
        if decision.version in self.apps:
            return decision
        self._view.errors += 1  # the store names a version nobody mounts: count it
        if decision.version not in self._warned_unmounted:
            self._warned_unmounted.add(decision.version)
            log.warning(
                "cohortroute: the store names version %r, which is not mounted here (mounted: %s); "
                "serving %r instead. Mount it, or fix the pin/rule/rollout that names it.",
                decision.version,
                ", ".join(self.apps),
                self.default,
            )
        return Decision(
            decision.tenant,
            self.default,
            Reason.DEFAULT,
            bucket=decision.bucket,
            detail=f"{decision.version} is not mounted here",
        )

    def _miss(self, key: Any, raw: str) -> _Entry:
        """Decide for a host not in the cache (reading the store, bounded by the timeout)."""
        generation = self._generation
        tenant, rejected = self._resolve(raw)
        if rejected is not None:
            return self._remember(key, generation, rejected)
        record = None if tenant is None else self._view.tenant(tenant)
        return self._settle(key, generation, tenant, record)

    async def _miss_async(self, key: Any, raw: str) -> _Entry:
        """:meth:`_miss` for the ASGI router: a slow store never blocks the event loop."""
        generation = self._generation
        tenant, rejected = self._resolve(raw)
        if rejected is not None:
            return self._remember(key, generation, rejected)
        record = None if tenant is None else await self._view.tenant_async(tenant)
        return self._settle(key, generation, tenant, record)

    def _resolve(self, raw: str) -> tuple[str | None, _Entry | None]:
        """The tenant for a raw Host value, or the 400 entry when the host is rejected."""
        try:
            return self._resolver(parse_host(raw)), None
        except InvalidHostError as exc:
            return None, (None, None, self._reject(str(exc)))

    def _settle(
        self, key: Any, generation: int, tenant: str | None, record: TenantRecord | None
    ) -> _Entry:
        """Decide from the record read on a miss, and cache the entry unless it is a guess."""
        stale = False
        if tenant is not None and record is None:
            # The store failed and nothing is known: the default now, and ask again next time.
            record, stale = TenantRecord(tenant), True
        decided = decide(self._view.policy, record, self.default, override=self._override(tenant))
        decision = self._checked(decided)
        # Rollout controller (issue 5): a tenant whose data is migrating gets 503 + Retry-After.
        target = (
            self._maintenance_target if decided.maintenance else self._targets[decision.version]
        )
        entry: _Entry = (decision, tenant, target)
        if stale:
            return entry
        if (
            record is not None
            and tenant is not None
            and self._register_tenants
            and not record.registered
            and not decided.maintenance
        ):
            # Register only once the app answers the tenant with a status below 400: a
            # flood of random subdomains (which the app 404s) never grows the registry.
            entry = (decision, tenant, self._watch(target, tenant))
        return self._remember(key, generation, entry)

    def _remember(self, key: Any, generation: int, entry: _Entry) -> _Entry:
        cache = self._cache
        if len(cache) >= self._cache_size:
            cache.clear()  # start over rather than evict one by one: O(1) and bounded
        if generation == self._generation:
            cache[key] = entry  # not when a refresh dropped the cache meanwhile: it may be stale
        return entry


def _bad_request_body(message: str) -> bytes:
    return f"400 Bad Request: {message}.\n".encode()


class WSGICohortRouter(CohortRouter):
    """The WSGI flavour of :class:`CohortRouter` (every mounted version is a WSGI app)."""

    def __init__(self, apps: Mapping[str, Any], **kwargs: Any) -> None:
        if kwargs.get("interface") == "wsgi" and any(is_asgi_app(a) for a in apps.values()):
            raise ConfigurationError(
                "interface='wsgi' but some versions are ASGI apps; serve the router with an ASGI "
                "server (uvicorn) and leave interface='auto'"
            )
        super().__init__(apps, **kwargs)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            host = environ["HTTP_HOST"]  # a subscript is cheaper than .get() on the hot path
        except KeyError:
            # HTTP/1.0 requests may omit Host; SERVER_NAME is the server's own name then.
            host = (
                environ.get("SERVER_NAME", "")
                if environ.get("SERVER_PROTOCOL") == "HTTP/1.0"
                else ""
            )
        now = monotonic()
        if now >= self._next_check:
            self._refresh(now)
        entry = self._cache.get(host)
        if entry is None:
            entry = self._miss(host, host)
        environ[DECISION_KEY], environ[TENANT_KEY], app = entry
        return app(environ, start_response)  # type: ignore[no-any-return]

    def _reject(self, message: str) -> WSGIApplication:
        body = _bad_request_body(message)
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]

        def bad_request(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("400 Bad Request", headers)
            return [body]

        return bad_request

    def _maintenance(self, retry_after: int, body: str) -> WSGIApplication:
        return maintenance_wsgi(retry_after, body)  # rollout controller (issue 5)

    def _watch(self, app: WSGIApplication, tenant: str) -> WSGIApplication:
        queue = self._queue_registration

        def watched(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            def start(status: str, headers: Any, exc_info: Any = None) -> Any:
                if status[:1] in ("1", "2", "3"):
                    queue(tenant)
                return start_response(status, headers, exc_info)

            return app(environ, start)

        return watched


class _WsgiVersionInstance(WsgiToAsgiInstance):
    """asgiref's per-request WSGI bridge, also copying our decision keys into the environ."""

    def build_environ(self, scope: Scope, body: Any) -> dict[str, Any]:
        environ: dict[str, Any] = super().build_environ(scope, body)  # type: ignore[no-untyped-call]
        environ[DECISION_KEY] = scope.get(DECISION_KEY)
        environ[TENANT_KEY] = scope.get(TENANT_KEY)
        return environ


class _WsgiVersion(WsgiToAsgi):
    """A WSGI version mounted under the ASGI router; websockets cannot reach it (closed 1003)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        instance = _WsgiVersionInstance(self.wsgi_application, self.duplicate_header_limit)  # type: ignore[no-untyped-call]
        await instance(scope, receive, send)


class ASGICohortRouter(CohortRouter):
    """The ASGI flavour of :class:`CohortRouter`; also owns lifespan for every ASGI version."""

    def _mount(self) -> dict[str, Any]:
        self._asgi_versions = [(n, a) for n, a in self.apps.items() if is_asgi_app(a)]
        return {
            n: a if is_asgi_app(a) else _WsgiVersion(a)  # type: ignore[no-untyped-call]
            for n, a in self.apps.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            host = None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value
                    break
            if host is None:
                server = scope.get("server")
                host = (
                    server[0].encode("latin-1")
                    if server and scope.get("http_version") == "1.0"
                    else b""
                )
            now = monotonic()
            if now >= self._next_check:
                self._refresh(now, wait=False)  # never block the event loop on the store
            entry = self._cache.get(host)
            if entry is None:
                entry = await self._miss_async(host, host.decode("latin-1"))
            scope[DECISION_KEY], scope[TENANT_KEY], app = entry
            await app(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            # An unknown scope type: hand it to the default version, as a server would.
            await self._targets[self.default](scope, receive, send)

    def _reject(self, message: str) -> ASGIApp:
        body = _bad_request_body(message)

        async def bad_request(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return bad_request

    def _maintenance(self, retry_after: int, body: str) -> ASGIApp:
        return maintenance_asgi(retry_after, body)  # rollout controller (issue 5)

    def _watch(self, app: ASGIApp, tenant: str) -> ASGIApp:
        queue = self._queue_registration

        async def watched(scope: Scope, receive: Receive, send: Send) -> None:
            async def watching_send(message: Message) -> None:
                kind = message["type"]
                if (kind == "http.response.start" and int(message["status"]) < 400) or (
                    kind == "websocket.accept"
                ):
                    queue(tenant)
                await send(message)

            await app(scope, receive, watching_send)

        return watched

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        from ._lifespan import run_lifespan

        await run_lifespan(self._asgi_versions, scope, receive, send)

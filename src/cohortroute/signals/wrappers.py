"""The signal wrappers: one per mounted version, WSGI or ASGI, counting every request.

A wrapper reads the tenant the router decided (``environ["cohortroute.tenant"]`` /
``scope["cohortroute.tenant"]``), times the request until the response is complete -- the
WSGI body iterable closed, or the final ASGI body message (``more_body`` false) sent -- and
counts it in its :class:`~.counters.VersionCounter`. Bodies are never buffered: a streaming
body is passed through chunk by chunk. A list or tuple body is complete when the app returns,
so it is counted then and returned as it is.

:func:`Signals` is the same wrapper standalone, for a version that runs behind a proxy instead
of inside a router: the tenant then comes from the ``X-Cohortroute-Tenant`` header the proxy
sets, else from the Host under ``domains``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from time import thread_time
from typing import Any

from .._clock import SYSTEM, Clock
from .._types import (
    ASGIApp,
    Message,
    OptExcInfo,
    Receive,
    Scope,
    Send,
    StartResponse,
    WSGIApp,
    WSGIEnvironment,
)
from ..errors import ConfigurationError, InvalidHostError
from ..policy import check_version_name
from ..router.base import TENANT_KEY, is_asgi_app
from ..store.base import Store
from ..tenancy import (
    DEFAULT_RESERVED,
    SubdomainResolver,
    TenantResolver,
    is_valid_label,
    parse_host,
)
from .config import SignalsConfig
from .counters import FIVE_XX, STATUS_COLUMN, VersionCounter, status_column
from .logfilter import CURRENT
from .recorder import Recorder

log = logging.getLogger(__name__)

#: The header a proxy sets to the tenant it decided, read by a standalone wrapper.
TENANT_HEADER = "X-Cohortroute-Tenant"
_TENANT_ENVIRON = "HTTP_X_COHORTROUTE_TENANT"
_TENANT_HEADER_BYTES = b"x-cohortroute-tenant"
#: Distinct hosts a standalone wrapper remembers the tenant of.
_MAX_HOSTS = 10_000


class _Tenants:
    """Finds the tenant of a request that did not come through a router in this process."""

    def __init__(self, resolver: TenantResolver | None) -> None:
        self._resolver = resolver
        self._hosts: dict[str, str] = {}

    def header(self, value: str | None) -> str | None:
        """The tenant a proxy's header names ("" when invalid), None without the header."""
        if value is None:
            return None
        name = value.strip().lower()
        return name if is_valid_label(name) else ""

    def host(self, host: str) -> str:
        """The tenant of a Host value under the configured domains ("" for none)."""
        tenant = self._hosts.get(host)
        if tenant is None:
            tenant = ""
            if self._resolver is not None:
                try:
                    tenant = self._resolver(parse_host(host)) or ""
                except InvalidHostError:
                    tenant = ""
            if len(self._hosts) >= _MAX_HOSTS:
                self._hosts.clear()
            self._hosts[host] = tenant
        return tenant


class SignalsWSGI(VersionCounter):
    """Counts the requests of one WSGI version (see the module docstring)."""

    def __init__(
        self, app: WSGIApp, version: str, recorder: Recorder, clock: Clock, tenants: _Tenants
    ) -> None:
        super().__init__(version, recorder, clock)
        self.app = app
        self._tenants = tenants
        self._log_context = recorder.config.log_context

    def _no_tenant(self, environ: WSGIEnvironment) -> str:
        if TENANT_KEY in environ:
            return ""  # the router found none
        tenant = self._tenants.header(environ.get(_TENANT_ENVIRON))
        if tenant is None:
            tenant = self._tenants.host(environ.get("HTTP_HOST", ""))
        return tenant

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        read_clock = self._read_clock
        began = read_clock()
        tenant = environ.get(TENANT_KEY) or self._no_tenant(environ)
        if self._log_context:
            CURRENT.set((tenant, self.version))
        cpu = thread_time() if self._cpu_every and self.cpu_due() else 0.0
        status = [""]

        def start(
            line: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            status[0] = line
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            self._finish(tenant, FIVE_XX, began, True, cpu)
            raise
        if type(body) is list or type(body) is tuple:
            end = read_clock()
            if cpu:
                cpu = (thread_time() - cpu) * self._cpu_every
            self._record(tenant, STATUS_COLUMN.get(status[0][:1], FIVE_XX), began, end, False, cpu)
            return body
        return _Body(body, self, tenant, began, status, cpu)

    def _finish(self, tenant: str, column: int, began: float, failed: bool, cpu: float) -> None:
        end = self._read_clock()
        if cpu:
            cpu = (thread_time() - cpu) * self._cpu_every
        self._record(tenant, column, began, end, failed, cpu)


class _Body:
    """A streaming WSGI body, passed through; the request is counted when it is closed."""

    __slots__ = ("_began", "_body", "_counter", "_cpu", "_done", "_failed", "_status", "_tenant")

    def __init__(
        self,
        body: Iterable[bytes],
        counter: SignalsWSGI,
        tenant: str,
        began: float,
        status: list[str],
        cpu: float,
    ) -> None:
        self._body = body
        self._counter = counter
        self._tenant = tenant
        self._began = began
        self._status = status
        self._cpu = cpu
        self._failed = False
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except Exception:
            self._failed = True
            raise
        finally:
            if not self._done:
                self._done = True
                failed = self._failed
                column = FIVE_XX if failed else STATUS_COLUMN.get(self._status[0][:1], FIVE_XX)
                self._counter._finish(self._tenant, column, self._began, failed, self._cpu)


class SignalsASGI(VersionCounter):
    """Counts the HTTP requests of one ASGI version; other scopes pass through uncounted."""

    def __init__(
        self, app: ASGIApp, version: str, recorder: Recorder, clock: Clock, tenants: _Tenants
    ) -> None:
        super().__init__(version, recorder, clock)
        self.app = app
        self._tenants = tenants
        self._log_context = recorder.config.log_context

    def _no_tenant(self, scope: Scope) -> str:
        if TENANT_KEY in scope:
            return ""
        host = ""
        for name, value in scope.get("headers", ()):
            if name == _TENANT_HEADER_BYTES:
                return self._tenants.header(value.decode("latin-1")) or ""
            if name == b"host":
                host = value.decode("latin-1")
        return self._tenants.host(host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read_clock = self._read_clock
        began = read_clock()
        tenant = scope.get(TENANT_KEY) or self._no_tenant(scope)
        if self._log_context:
            CURRENT.set((tenant, self.version))
        # [status column, counted]
        state: list[Any] = [FIVE_XX, False]

        async def observe(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                state[0] = status_column(int(message["status"]))
            elif kind == "http.response.body" and not message.get("more_body", False):
                await send(message)
                if not state[1]:
                    state[1] = True
                    self._record(tenant, state[0], began, read_clock(), False, 0.0)
                return
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except BaseException:
            if not state[1]:
                state[1] = True
                self._record(tenant, FIVE_XX, began, read_clock(), True, 0.0)
            raise
        if not state[1]:  # the app returned without finishing its response
            self._record(tenant, FIVE_XX, began, read_clock(), False, 0.0)


def wrap(app: Any, version: str, recorder: Recorder, clock: Clock, tenants: _Tenants) -> Any:
    """``app`` counted as ``version``: the ASGI wrapper for an ASGI app, else the WSGI one."""
    if is_asgi_app(app):
        return SignalsASGI(app, version, recorder, clock, tenants)
    return SignalsWSGI(app, version, recorder, clock, tenants)


def Signals(
    app: Callable[..., Any],
    *,
    version: str,
    store: str | Store,
    config: SignalsConfig | None = None,
    domains: Iterable[str] | None = None,
    reserved: Iterable[str] = DEFAULT_RESERVED,
    tenant_resolver: TenantResolver | None = None,
    clock: Clock = SYSTEM,
) -> SignalsWSGI | SignalsASGI:
    """Count the requests of ``app`` (one version) per tenant, and flush them to ``store``.

    For a version served behind a proxy rather than inside a :class:`~cohortroute.CohortRouter`
    (which wraps its versions itself with ``signals=True``). The tenant comes from the router's
    decision when one ran in this process, else from the ``X-Cohortroute-Tenant`` header the
    proxy sets (only a valid tenant name is taken), else from the Host under ``domains`` (or
    ``tenant_resolver``), else none. Returns a WSGI app for a WSGI ``app``, an ASGI one for an
    ASGI ``app``; call its ``close()`` at shutdown (pending counts are also written at exit).

    .. versionadded:: 0.2
    """
    from .sinks import open_sink

    check_version_name(version)
    if not callable(app):
        raise ConfigurationError(f"Signals needs a WSGI or ASGI app, not {app!r}")
    config = config if config is not None else SignalsConfig()
    resolver = tenant_resolver
    if resolver is None and domains is not None:
        resolver = SubdomainResolver(domains, reserved=reserved, allow_unknown_hosts=True)
    sink = config.sink if config.sink is not None else open_sink(store)
    recorder = Recorder(sink, config, clock)
    wrapped: SignalsWSGI | SignalsASGI = wrap(app, version, recorder, clock, _Tenants(resolver))
    return wrapped


def wrap_versions(
    targets: dict[str, Any], signals: bool | SignalsConfig, store: Store, clock: Clock
) -> tuple[dict[str, Any], Recorder | None]:
    """A router's targets, each counted under its version name, and their recorder (None and
    the targets as they are when ``signals`` is false)."""
    if signals is False:
        return targets, None
    if signals is True:
        signals = SignalsConfig()
    if not isinstance(signals, SignalsConfig):
        raise ConfigurationError(
            f"signals must be True, False or a SignalsConfig(...), not {signals!r}"
        )
    from .sinks import open_sink

    sink = signals.sink if signals.sink is not None else open_sink(store)
    recorder = Recorder(sink, signals, clock)
    tenants = _Tenants(None)
    wrapped = {name: wrap(app, name, recorder, clock, tenants) for name, app in targets.items()}
    return wrapped, recorder

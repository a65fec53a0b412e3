"""Wrapping versions with signals: in a router (``signals=True``) or standalone (:func:`Signals`).

A wrapper reads the tenant the router decided (``environ["cohortroute.tenant"]`` /
``scope["cohortroute.tenant"]``), times the request until the response is complete and counts
it for its version: :mod:`.wsgi` and :mod:`.asgi` hold the two flavours. Standalone, for a
version behind a proxy, the tenant comes from the proxy's ``X-Cohortroute-Tenant`` header or
the Host (:mod:`.tenants`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, overload

from .._clock import SYSTEM, Clock
from .._types import ASGIApp, WSGIApp
from ..errors import ConfigurationError
from ..policy import check_version_name
from ..router.base import is_asgi_app
from ..store.base import Store
from ..tenancy import DEFAULT_RESERVED, TenantResolver
from .asgi import SignalsASGI
from .config import SignalsConfig
from .recorder import Recorder
from .tenants import Tenants
from .wsgi import SignalsWSGI

log = logging.getLogger(__name__)


def wrap(app: Any, version: str, recorder: Recorder, clock: Clock, tenants: Tenants) -> Any:
    """``app`` counted as ``version``: the ASGI wrapper for an ASGI app, else the WSGI one."""
    if is_asgi_app(app):
        return SignalsASGI(app, version, recorder, clock, tenants)
    return SignalsWSGI(app, version, recorder, clock, tenants)


def _recorder(config: SignalsConfig, store: str | Store, clock: Clock) -> Recorder:
    from .sinks import open_sink  # the sinks import the store backends: only when used

    sink = config.sink
    if sink is None:
        sink = open_sink(store, retention_days=config.retention_days)
    return Recorder(sink, config, clock)


@overload
def Signals(
    app: WSGIApp,
    *,
    version: str,
    store: str | Store,
    config: SignalsConfig | None = None,
    domains: Iterable[str] | None = None,
    reserved: Iterable[str] = DEFAULT_RESERVED,
    tenant_resolver: TenantResolver | None = None,
    clock: Clock = SYSTEM,
) -> SignalsWSGI: ...


@overload
def Signals(
    app: ASGIApp,
    *,
    version: str,
    store: str | Store,
    config: SignalsConfig | None = None,
    domains: Iterable[str] | None = None,
    reserved: Iterable[str] = DEFAULT_RESERVED,
    tenant_resolver: TenantResolver | None = None,
    clock: Clock = SYSTEM,
) -> SignalsASGI: ...


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
    check_version_name(version)
    if not callable(app):
        raise ConfigurationError(f"Signals needs a WSGI or ASGI app, not {app!r}")
    recorder = _recorder(config if config is not None else SignalsConfig(), store, clock)
    tenants = Tenants.under(domains, reserved, tenant_resolver)
    wrapped: SignalsWSGI | SignalsASGI = wrap(app, version, recorder, clock, tenants)
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
    recorder = _recorder(signals, store, clock)
    tenants = Tenants()
    # The bound __call__ is what the router calls: calling a bound method is cheaper than
    # calling an instance.
    wrapped = {
        name: wrap(app, name, recorder, clock, tenants).__call__ for name, app in targets.items()
    }
    return wrapped, recorder

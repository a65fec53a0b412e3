"""One router used only to decide: which version pool a Host goes to, the router's way.

A :class:`Decider` is a :class:`~cohortroute.CohortRouter` whose versions are tiny apps naming
their pool, so host validation, the tenant rule, precedence, pins, tags, the rollout share, the
ratchet, migration gating (503) and the ``unmounted`` fallback are the router's own code, with
its decision cache and its store refresh. Only the versions with a pool are mounted: a decision
naming another one gets the default, as a router mounting those versions would serve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._types import StartResponse, WSGIEnvironment
from ..decision import Decision
from ..errors import ConfigurationError
from ..router import CohortRouter
from ..store.base import Store
from ..tenancy import DEFAULT_RESERVED
from .options import check_server

log = logging.getLogger(__name__)

#: The pool a tenant is sent to while its data migrates: the proxy answers 503.
MAINTENANCE = "cohortroute_maintenance"
POOL_HEADER = "X-Cohortroute-Pool"
VERSION_HEADER = "X-Cohortroute-Version"
TENANT_HEADER = "X-Cohortroute-Tenant"
REASON_HEADER = "X-Cohortroute-Reason"
STATUS_HEADER = "X-Cohortroute-Status"


def pool_name(version: str) -> str:
    """The proxy-side name of ``version``'s server pool: ``2026.12`` -> ``cohortroute_2026_12``
    (a name every proxy accepts for an upstream, a backend or a balancer)."""
    return "cohortroute_" + re.sub(r"[^A-Za-z0-9_]", "_", version)


@dataclass(frozen=True)
class Pools:
    """Version -> the servers of its pool: ``host:port`` or ``unix:/path`` addresses."""

    servers: Mapping[str, tuple[str, ...]]

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Pools:
        """``["2026.11=127.0.0.1:8001", "2026.12=unix:/run/b.sock"]``; a version may repeat."""
        servers: dict[str, list[str]] = {}
        for spec in specs:
            version, sep, address = spec.partition("=")
            if not sep or not version or not address:
                raise ConfigurationError(
                    f"--upstream {spec!r}: give VERSION=ADDRESS, e.g. "
                    "--upstream 2026.12=127.0.0.1:8002 or --upstream 2026.12=unix:/run/b.sock"
                )
            if "://" in address:
                raise ConfigurationError(
                    f"--upstream {spec!r}: give host:port or unix:/path, without a scheme"
                )
            check_server(address)
            servers.setdefault(version, []).append(address)
        if not servers:
            raise ConfigurationError("give each version's servers: --upstream VERSION=ADDRESS")
        return cls({version: tuple(found) for version, found in servers.items()})

    @property
    def versions(self) -> list[str]:
        return list(self.servers)


def check_versions(store: Store, pools: Pools) -> None:
    """Refuse an ``--upstream`` for a version the store does not know (a typo, a wrong case),
    naming the known ones: such a pool would never be chosen, and its version never served."""
    known = sorted(store.policy().versions)
    unknown = [version for version in pools.versions if version not in known]
    if unknown:
        raise ConfigurationError(
            f"--upstream names {', '.join(map(repr, unknown))}, not a version in the store; "
            f"the known versions are: {', '.join(known) or '(none: register them first)'}"
        )


def _answer(version: str) -> Any:
    pool = pool_name(version).encode()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        decision: Decision = environ["cohortroute.decision"]
        headers = [
            (POOL_HEADER, pool.decode()),
            (VERSION_HEADER, decision.version),
            (REASON_HEADER, str(decision.reason)),
            (STATUS_HEADER, "200"),
            ("Content-Length", "0"),
            ("Cache-Control", "no-store"),
        ]
        if decision.tenant is not None:
            headers.append((TENANT_HEADER, decision.tenant))
        start_response("200 OK", headers)
        return []

    return app


class Decider:
    """Decides hosts for a proxy: the pool, version, tenant and reason, or the status to answer.

    :param store: the store (URL or object) the routers use.
    :param pools: the versions the proxy has servers for (the others are ``unmounted``).
    :param domains: the domains tenants are subdomains of, as the router is given.
    :param reserved: labels that are not tenants.
    :param refresh_interval: seconds between checks of the store's revision (the store's own
        default when None): how soon a pin or a rollout step reaches the proxy.
    """

    def __init__(
        self,
        store: str | Store,
        pools: Pools,
        *,
        domains: Iterable[str],
        reserved: Iterable[str] = DEFAULT_RESERVED,
        refresh_interval: float | None = None,
        default: str | None = None,
    ) -> None:
        self.pools = pools
        self.domains = [domain.lower().strip(".") for domain in domains]
        opened = store if isinstance(store, Store) else None
        if opened is not None:
            check_versions(opened, pools)
        self.router: Any = CohortRouter(
            apps={version: _answer(version) for version in pools.versions},
            domains=self.domains,
            reserved=reserved,
            store=store,
            default=default,
            refresh_interval=refresh_interval,
            register_tenants=False,
            lookup_timeout=1.0,  # off the request path: a slow store may take its time
        )

        if opened is None:
            try:
                check_versions(self.store, pools)
            except BaseException:
                self.router.close()
                raise

    @property
    def store(self) -> Store:
        return self.router.store  # type: ignore[no-any-return]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """The router as a WSGI app: 200 with the pool headers, 400 or 503 otherwise."""
        return self.router(environ, start_response)

    def host(self, host: str) -> tuple[int, str | None]:
        """(status, pool) for a request with ``Host: host``: 200 and the pool, or 400/503 and
        None, exactly as the router would answer it."""
        found: list[tuple[int, str | None]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            code = int(status.split(" ", 1)[0])
            pool = dict(headers).get(POOL_HEADER) if code == 200 else None
            found.append((code, pool))
            return lambda data: None

        environ = {
            "REQUEST_METHOD": "GET",
            "HTTP_HOST": host,
            "PATH_INFO": "/",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": None,
        }
        body = self.router(environ, start_response)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return found[0]

    def explain(self, tenant: str) -> tuple[str, Decision]:
        """The pool ``tenant`` is sent to and the decision behind it, read fresh."""
        decision: Decision = self.router.explain(tenant)
        pool = MAINTENANCE if decision.maintenance else pool_name(decision.version)
        return pool, decision

    def close(self) -> None:
        self.router.close()

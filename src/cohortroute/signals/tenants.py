"""The tenant of a request that no router in this process decided: for standalone signals.

A version behind a proxy gets the tenant the proxy decided in the ``X-Cohortroute-Tenant``
header (taken only when it is a valid tenant name), else the one its Host names under the
configured domains. Under a router the decision's tenant is used and the header is ignored,
so a client cannot name a tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .._types import Scope, WSGIEnvironment
from ..errors import InvalidHostError
from ..router.base import TENANT_KEY
from ..tenancy import (
    DEFAULT_RESERVED,
    SubdomainResolver,
    TenantResolver,
    is_valid_label,
    parse_host,
)

log = logging.getLogger(__name__)

#: The header a proxy sets to the tenant it decided, read by a standalone wrapper.
TENANT_HEADER = "X-Cohortroute-Tenant"
_ENVIRON_NAME = "HTTP_X_COHORTROUTE_TENANT"
_HEADER_NAME = b"x-cohortroute-tenant"
#: Distinct hosts remembered (then started over).
MAX_HOSTS = 10_000


class Tenants:
    """Finds the tenant of a request from the proxy's header or the Host."""

    def __init__(self, resolver: TenantResolver | None = None) -> None:
        self._resolver = resolver
        self._hosts: dict[str, str] = {}

    @classmethod
    def under(
        cls,
        domains: Iterable[str] | None,
        reserved: Iterable[str] = DEFAULT_RESERVED,
        resolver: TenantResolver | None = None,
    ) -> Tenants:
        """Tenants from ``resolver``, else subdomains of ``domains`` (else only the header)."""
        if resolver is None and domains is not None:
            resolver = SubdomainResolver(domains, reserved=reserved, allow_unknown_hosts=True)
        return cls(resolver)

    def of_environ(self, environ: WSGIEnvironment) -> str:
        """The tenant of a WSGI request with no tenant from a router ("" for none)."""
        if TENANT_KEY in environ:
            return ""  # a router found none
        tenant = self._header(environ.get(_ENVIRON_NAME))
        return tenant if tenant is not None else self._host(environ.get("HTTP_HOST", ""))

    def of_scope(self, scope: Scope) -> str:
        """The tenant of an ASGI request with no tenant from a router ("" for none)."""
        if TENANT_KEY in scope:
            return ""
        host = ""
        for name, value in scope.get("headers", ()):
            if name == _HEADER_NAME:
                return self._header(value.decode("latin-1")) or ""
            if name == b"host":
                host = value.decode("latin-1")
        return self._host(host)

    @staticmethod
    def _header(value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().lower()
        return name if is_valid_label(name) else ""

    def _host(self, host: str) -> str:
        tenant = self._hosts.get(host)
        if tenant is None:
            tenant = ""
            if self._resolver is not None:
                try:
                    tenant = self._resolver(parse_host(host)) or ""
                except InvalidHostError:
                    tenant = ""
            if len(self._hosts) >= MAX_HOSTS:
                self._hosts.clear()
            self._hosts[host] = tenant
        return tenant

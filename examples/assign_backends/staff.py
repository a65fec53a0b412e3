"""A request-aware assignment backend: the company's own staff get the preview on any tenant.

The single sign-on proxy in front of the app sets ``X-Staff: 1`` on requests from signed-in
employees (and strips it from everybody else's); the backend trusts the header only from the
proxy's addresses, so a customer reaching the app some other way cannot claim it. Staff then see
the candidate on real customers' data before any customer does, while the tenant's own cached
decision keeps serving everybody else::

    router = CohortRouter(apps, domains=["example.com"], store=URL,
                          assign=[InternalStaff("2026.12", proxies=["10.0.0.0/8"])])
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass, field

from cohortroute import Assignment, Query


@dataclass(frozen=True)
class InternalStaff:
    """Requests carrying ``header: 1`` from one of ``proxies`` get ``version``."""

    version: str
    proxies: Collection[str] = ()  # networks the header is trusted from; empty: from anywhere
    header: str = "X-Staff"
    name: str = "staff"
    request_aware: bool = True  # asked on each request, with query.request
    ttl: float | None = None  # not used: a request-aware answer is never cached
    timeout: float | None = None  # a header look-up: called inline
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        networks = tuple(ipaddress.ip_network(p) for p in self.proxies)
        object.__setattr__(self, "_networks", networks)

    def assign(self, query: Query, /) -> Assignment | None:
        request = query.request
        if request is None or request.headers.get(self.header) != "1":
            return None
        if self._networks and not self._trusted(request.client):
            return None  # the header from outside the proxies: not staff
        return Assignment(self.version, "staff", f"{self.header} from {request.client}")

    def _trusted(self, client: str | None) -> bool:
        try:
            address = ipaddress.ip_address(client or "")
        except ValueError:
            return False
        return any(address in network for network in self._networks)

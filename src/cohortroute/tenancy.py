"""Host validation and tenant resolution: ``ACME.Example.com.:8080`` -> tenant ``acme``.

The rule, for a router configured with ``domains=["example.com"]``:

* The Host is validated strictly first (:func:`parse_host`). Anything malformed -- empty,
  control characters, spaces, ``@ / ? # \\``, non-ASCII, labels over 63 characters, names over
  253, a port that is not 1-5 plain digits in 1..65535 -- is rejected (the router answers 400).
* The name is lower-cased, the port dropped, and one trailing dot allowed.
* ``<label>.example.com`` gives tenant ``<label>``, unless the label is reserved (``www`` by
  default). The apex ``example.com``, reserved labels, deeper names (``a.b.example.com``) and IP
  literals have no tenant: they get the default version with reason ``no-tenant``.
* Any other well-formed name is outside every configured domain and is rejected like Django's
  ALLOWED_HOSTS, unless the router is told to serve such hosts the default version.
* When domains nest (``example.com`` and ``eu.example.com``) the longest match wins.

Only ``Host`` is read. Behind a proxy that rewrites it, put werkzeug's ``ProxyFix(x_host=1)`` in
front of the router so ``X-Forwarded-Host`` is trusted deliberately, never by default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

from .errors import ConfigurationError, InvalidHostError

TenantResolver = Callable[[str], "str | None"]
"""Maps a validated, normalised host name (lower case, no port, no trailing dot) to a tenant or
None. It may raise :class:`~cohortroute.errors.InvalidHostError` to reject the host with 400."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_NAME = re.compile(r"[a-z0-9.-]{1,253}\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_IPV6 = re.compile(r"\[([0-9a-f:.]{2,45})\]\Z")

DEFAULT_RESERVED = frozenset({"www"})


def is_valid_label(label: str) -> bool:
    """True for one DNS label: 1-63 of ``a-z 0-9 -``, not starting or ending with ``-``."""
    return _LABEL.match(label) is not None


def parse_host(raw: str) -> str:
    """Validate a Host header value and return the normalised host name.

    The result is lower case, without port or trailing dot; an IPv6 literal keeps its brackets.
    Raises :class:`InvalidHostError` (never anything else) for anything malformed.
    """
    if not raw or len(raw) > 260:
        raise InvalidHostError("missing or oversized Host header")
    host = raw.lower()
    port = None
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            raise InvalidHostError("unterminated IPv6 literal in Host")
        rest = host[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidHostError("junk after IPv6 literal in Host")
            port = rest[1:]
        host = host[: end + 1]
        match = _IPV6.match(host)
        if match is None:
            raise InvalidHostError("malformed IPv6 literal in Host")
        try:
            ipaddress.IPv6Address(match.group(1))
        except ValueError:
            raise InvalidHostError("malformed IPv6 literal in Host") from None
    else:
        name, sep, port_text = host.partition(":")
        if sep:
            port = port_text
        host = name
    if port is not None and (_PORT.match(port) is None or not 0 < int(port) <= 65535):
        raise InvalidHostError("invalid port in Host")
    if host.startswith("["):
        return host
    if host.endswith("."):
        host = host[:-1]
    if _NAME.match(host) is None:
        raise InvalidHostError("invalid characters or length in Host")
    for label in host.split("."):
        if _LABEL.match(label) is None:
            raise InvalidHostError("invalid label in Host")
    return host


def is_ip(host: str) -> bool:
    """True when a normalised host is an IP literal (IPv4 dotted quad or bracketed IPv6)."""
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def normalise_domain(domain: str) -> str:
    """Validate one configured domain and return it normalised; raise ConfigurationError if bad."""
    if not isinstance(domain, str):
        raise ConfigurationError(f"domains must be strings like 'example.com', got {domain!r}")
    try:
        name = parse_host(domain.strip())
    except InvalidHostError:
        raise ConfigurationError(
            f"invalid domain {domain!r}: give a bare host name like 'example.com' "
            "(no scheme, path or wildcard)"
        ) from None
    if is_ip(name) or domain.strip() != domain or ":" in domain:
        raise ConfigurationError(
            f"invalid domain {domain!r}: give a bare host name like 'example.com' "
            "(no port, IP address or surrounding spaces)"
        )
    return name


class SubdomainResolver:
    """The default resolver: the label immediately left of a configured domain is the tenant."""

    __slots__ = ("_suffixes", "allow_unknown_hosts", "domains", "reserved")

    def __init__(
        self,
        domains: Iterable[str],
        *,
        reserved: Iterable[str] = DEFAULT_RESERVED,
        allow_unknown_hosts: bool = False,
    ) -> None:
        if isinstance(domains, str):
            raise ConfigurationError(
                f"domains must be a list of names, e.g. domains=[{domains!r}], not a string"
            )
        names = sorted({normalise_domain(d) for d in domains}, key=len, reverse=True)
        if not names:
            raise ConfigurationError(
                "domains is empty: give the domain tenants live under, e.g. "
                "domains=['example.com'], or pass your own tenant_resolver"
            )
        self.domains: tuple[str, ...] = tuple(names)
        self.reserved = frozenset(r.lower() for r in reserved)
        self.allow_unknown_hosts = allow_unknown_hosts
        self._suffixes = tuple((d, "." + d) for d in names)

    def __call__(self, host: str) -> str | None:
        """Return the tenant for a normalised host, None for no tenant; raise if not served here."""
        if is_ip(host):
            return None
        for domain, suffix in self._suffixes:
            if host == domain:
                return None
            if host.endswith(suffix):
                label = host[: -len(suffix)]
                if "." in label or label in self.reserved:
                    return None
                return label
        if self.allow_unknown_hosts:
            return None
        raise InvalidHostError("host is not under any domain this server is configured for")

    def __repr__(self) -> str:
        return f"SubdomainResolver(domains={list(self.domains)!r})"

"""Host validation and tenant resolution: ``ACME.Example.com.:8080`` -> tenant ``acme``.

The rule, for a router configured with ``domains=["example.com"]``:

* The Host is validated strictly first (:func:`parse_host`). Anything malformed -- empty, over
  :data:`MAX_HOST_LENGTH` characters, control characters, spaces, ``@ / ? # \\``, non-ASCII
  (Unicode names arrive as ``xn--`` A-labels), an ``xn--`` label that is not a valid A-label,
  labels over 63 characters, names over 253, a port that is not 1-5 plain digits in 1..65535
  without a leading zero -- is rejected (the router answers 400).
* The name is lower-cased (ASCII only: no Unicode character can case-fold into a tenant), the
  port dropped, and one trailing dot allowed.
* ``<label>.example.com`` gives tenant ``<label>``, unless the label is reserved (``www`` by
  default). The apex ``example.com``, reserved labels, deeper names (``a.b.example.com``) and IP
  literals have no tenant: they get the default version with reason ``no-tenant``.
* ``extra_hosts`` (``localhost``, ``shop-svc``: what health probes send) have no tenant either.
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

from ._idna import is_valid_a_label
from .errors import ConfigurationError, InvalidHostError, quoted

TenantResolver = Callable[[str], "str | None"]
"""Maps a validated, normalised host name (lower case, no port, no trailing dot) to a tenant or
None. It may raise :class:`~cohortroute.errors.InvalidHostError` to reject the host with 400.
The router lower-cases the tenant it returns; an answer that is not a tenant name (one ASCII DNS
label) gets the host 400 and logs an error once."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_NAME = re.compile(r"[a-z0-9.-]{1,253}\Z")
_PORT = re.compile(r"[1-9][0-9]{0,4}\Z")
_IPV6 = re.compile(r"\[([0-9a-f:.]{2,45})\]\Z")

DEFAULT_RESERVED = frozenset({"www"})

MAX_HOST_LENGTH = 260
"""The longest Host value that can be valid: a 253-character name, a trailing dot and ``:65535``.
Longer values are refused before any other work (and the router never caches them)."""


def is_valid_label(label: str) -> bool:
    """True for one DNS label: 1-63 of ``a-z 0-9 -``, not starting or ending with ``-``, and
    a valid IDNA A-label when it starts with ``xn--``."""
    if _LABEL.match(label) is None:
        return False
    return not label.startswith("xn--") or is_valid_a_label(label)


def parse_host(raw: str) -> str:
    """Validate a Host header value and return the normalised host name.

    The result is lower case, without port or trailing dot; an IPv6 literal keeps its brackets.
    Raises :class:`InvalidHostError` (never anything else) for anything malformed.
    """
    if not raw:
        raise InvalidHostError("missing Host header")
    if len(raw) > MAX_HOST_LENGTH:
        raise InvalidHostError(
            f"Host header over {MAX_HOST_LENGTH} characters (a DNS name has at most 253)"
        )
    if not raw.isascii():
        raise InvalidHostError("non-ASCII Host header: send international names as xn-- labels")
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
        if not is_valid_label(label):
            if label.startswith("xn--"):
                raise InvalidHostError("invalid IDNA (xn--) label in Host")
            raise InvalidHostError("invalid label in Host")
    return host


#: What a request with no Host that arrived on a Unix socket is routed as: the local machine.
UNIX_SOCKET_HOST = "127.0.0.1"


def server_host(name: str) -> str:
    """The Host of a request that sent none (HTTP/1.0), from the server's own address
    (``SERVER_NAME``, ``scope["server"][0]``): an IPv6 address (``::1``, ``fe80::1%eth0``) is
    put in brackets without its zone, as a Host carries it; a Unix socket's path (gunicorn
    ``-b unix:/run/app.sock``, ``uvicorn --uds``; ``@name`` or a NUL for an abstract one) is the
    local machine, :data:`UNIX_SOCKET_HOST`; anything else is left as it is."""
    if "/" in name or name.startswith(("@", "\0")):
        return UNIX_SOCKET_HOST
    if ":" not in name or name.startswith("["):
        return name
    return "[" + name.partition("%")[0] + "]"


def is_ip(host: str) -> bool:
    """True when a normalised host is an IP literal (IPv4 dotted quad or bracketed IPv6)."""
    if host.startswith("["):
        return True
    if not host[-1:].isdigit():
        return False  # a name: spares the exception IPv4Address raises for it
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


def normalise_extra_host(name: str) -> str:
    """Validate one of ``extra_hosts`` (``localhost``, ``shop-svc``) and return it normalised."""
    if not isinstance(name, str):
        raise ConfigurationError(f"extra_hosts must be host names like 'localhost', got {name!r}")
    try:
        host = parse_host(name)
    except InvalidHostError:
        host = ""
    if host and is_ip(host):
        raise ConfigurationError(
            f"extra host {name!r}: IP addresses already have no tenant; leave it out"
        )
    if not host or name.strip() != name or ":" in name:
        raise ConfigurationError(
            f"invalid extra host {quoted(name, 80)}: give a bare host name like 'localhost' or "
            "'shop-svc' (no scheme or port: every port is served)"
        )
    return host


class SubdomainResolver:
    """The default resolver: the label immediately left of a configured domain is the tenant.

    ``extra_hosts`` are exact host names served with no tenant (the default version, reason
    ``no-tenant``) although they are outside every domain: what a load balancer's or Docker's
    health probe sends (``localhost``, a service name). Only those exact names, on any port;
    names under a configured domain are refused, since they already resolve.
    """

    __slots__ = ("_suffixes", "allow_unknown_hosts", "domains", "extra_hosts", "reserved")

    def __init__(
        self,
        domains: Iterable[str],
        *,
        reserved: Iterable[str] = DEFAULT_RESERVED,
        allow_unknown_hosts: bool = False,
        extra_hosts: Iterable[str] = (),
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
        if isinstance(extra_hosts, str):
            raise ConfigurationError(
                f"extra_hosts must be a list of names, e.g. extra_hosts=[{extra_hosts!r}]"
            )
        extra = frozenset(normalise_extra_host(name) for name in extra_hosts)
        for host in sorted(extra):
            domain = self._domain_of(host)
            if domain is not None:
                raise ConfigurationError(
                    f"extra host {host!r} is under the configured domain {domain!r}, so it "
                    "already resolves (to a tenant or to no tenant): leave it out of extra_hosts"
                )
        self.extra_hosts: frozenset[str] = extra

    def _domain_of(self, host: str) -> str | None:
        for domain, suffix in self._suffixes:
            if host == domain or host.endswith(suffix):
                return domain
        return None

    def __call__(self, host: str) -> str | None:
        """Return the tenant for a normalised host, None for no tenant; raise if not served here."""
        if is_ip(host) or host in self.extra_hosts:
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

"""Apache httpd: mod_rewrite's ``RewriteMap`` picks a ``balancer://`` pool per Host.

Two kinds of map: ``txt:`` (the file :func:`map_file` writes, re-read by Apache whenever its
modification time changes, so an atomic rewrite needs no reload) or ``prg:`` (``cohortroute
proxy prg``, asked per new host, deciding live from the store: exact for tenants the store has
never heard of too).
"""

from __future__ import annotations

import logging
import shlex

from .decider import MAINTENANCE, pool_name
from .options import ProxySetup, comment
from .prg import BAD_HOST
from .table import DEFAULT_KEY, Table

log = logging.getLogger(__name__)


def map_file(table: Table) -> str:
    """``key pool`` lines for ``RewriteMap ... txt:``, ``.default`` first."""
    lines = [comment("apache"), f"# store revision {table.revision}"]
    lines += [f"{key} {pool}" for key, pool in table.entries()]
    return "\n".join(lines) + "\n"


def _member(address: str) -> str:
    # upgrade=websocket: a websocket handshake is tunnelled to the build (Apache 2.4.47+).
    if address.startswith("unix:"):
        return f'    BalancerMember "{address}|http://localhost" upgrade=websocket'
    return f'    BalancerMember "http://{address}" upgrade=websocket'


def config(setup: ProxySetup, prg_command: list[str] | None = None) -> str:
    """A default virtual host answering 400 and one routing the domains by the map."""
    if prg_command is None:
        source = f"txt:{setup.map_path}"
        lookup = f"${{cohortroute:%1|${{cohortroute:{DEFAULT_KEY}}}}}"
    else:
        source = "prg:" + shlex.join(prg_command)
        lookup = "${cohortroute:%1}"
    port = setup.listen.rsplit(":", 1)[-1]
    domain, *others = setup.domains
    out = [
        comment("apache"),
        "# Needs mod_rewrite, mod_headers, mod_proxy, mod_proxy_http, mod_proxy_balancer,",
        "# mod_lbmethod_byrequests. It is the first (default) virtual host on the port: any",
        "# Host arrives here, and what the router refuses (a host under no domain, a malformed",
        "# one) is answered 400; an IP literal gets the default pool, as from the router.",
        "",
        f"<VirtualHost *:{port}>",
        f"    ServerName {domain}",
        f"    ServerAlias *.{domain}" + "".join(f" {d} *.{d}" for d in others),
        "    ProxyPreserveHost On",
        "    # An encoded slash (/a%2Fb) reaches the build as sent, not a 404 from Apache.",
        "    AllowEncodedSlashes NoDecode",
        "    RequestHeader unset X-Cohortroute-Tenant",
        "    RequestHeader unset X-Cohortroute-Version",
        "    RequestHeader unset X-Cohortroute-Reason",
        "    RequestHeader set X-Forwarded-Proto expr=%{REQUEST_SCHEME}",
    ]
    for version, servers in setup.pools.servers.items():
        out.append(f'    <Proxy "balancer://{pool_name(version)}">  # version {version}')
        out += [_member(address) for address in servers]
        out.append("    </Proxy>")
    host = r"RewriteCond %{HTTP_HOST} ^(\[[^]]*\]|[^:]+?)\.?(:[0-9]+)?$"
    out += [
        "    RewriteEngine On",
        "    RewriteMap lc int:tolower",
        f'    RewriteMap cohortroute "{source}"',
        "    # The Host as the router validates it (labels, one trailing dot, the port), under",
        "    # a domain or an IP literal; anything else is 400.",
        f'    RewriteCond %{{HTTP_HOST}} "!{setup.host_pattern()}" [NC]',
        "    RewriteRule ^ - [R=400,L]",
        f"    {host}",
        "    RewriteCond ${lc:%1} ^(.*)$",
        f"    RewriteCond {lookup} ^{BAD_HOST}$",
        "    RewriteRule ^ - [R=400,L]",
        f"    {host}",
        "    RewriteCond ${lc:%1} ^(.*)$",
        f"    RewriteCond {lookup} ^{MAINTENANCE}$",
        f"    RewriteRule ^ - [R=503,L,E=COHORTROUTE_RETRY:{setup.retry_after}]",
        "    Header always set Retry-After %{COHORTROUTE_RETRY}e env=COHORTROUTE_RETRY",
        f"    {host}",
        "    RewriteCond ${lc:%1} ^(.*)$",
        f"    RewriteCond {lookup} ^(cohortroute_[A-Za-z0-9_]+)$",
        "    RewriteRule ^ - [E=COHORTROUTE_POOL:%1]",
        "    # The path as the client sent it (%{THE_REQUEST}), still percent-encoded: $1 of a",
        "    # RewriteRule is decoded, and %20, %23 or %C3%A9 would not reach the build. The query",
        "    # string is passed on unchanged.",
        '    RewriteCond "%{ENV:COHORTROUTE_POOL} %{THE_REQUEST}" '
        '"^(cohortroute_[A-Za-z0-9_]+) [^ ]+ /([^ ?]*)"',
        '    RewriteRule ^ "balancer://%1/%2" [P,L,NE]',
        "</VirtualHost>",
    ]
    return "\n".join(out) + "\n"

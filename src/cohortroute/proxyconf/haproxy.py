"""HAProxy: a map file read with ``map()``, one backend per version, updated live.

The default pool is in the map too (key ``.default``), so every change, the default's included,
is a ``set map``/``add map``/``del map`` on the runtime API: no reload (:mod:`.watch`).
"""

from __future__ import annotations

import logging

from .decider import MAINTENANCE, pool_name
from .options import ProxySetup, comment
from .table import DEFAULT_KEY, Table

log = logging.getLogger(__name__)


def map_file(table: Table) -> str:
    """``key pool`` lines: ``.default`` first, then every known tenant's host."""
    lines = [comment("haproxy"), f"# store revision {table.revision}"]
    lines += [f"{key} {pool}" for key, pool in table.entries()]
    return "\n".join(lines) + "\n"


def _server(index: int, address: str) -> str:
    where = f"unix@{address[5:]}" if address.startswith("unix:") else address
    return f"    server s{index} {where}"


def config(setup: ProxySetup) -> str:
    """A frontend routing by the map and a backend per version."""
    map_path = setup.map_path
    pattern = setup.domain_pattern()
    bind = setup.listen if ":" in setup.listen else f"*:{setup.listen}"
    out = [
        comment("haproxy"),
        "# Needs `stats socket ... level admin` in global for `--watch --runtime-api`.",
        "",
        "frontend cohortroute",
        "    mode http",
        f"    bind {bind}",
        "    http-request del-header X-Cohortroute-Tenant",
        "    http-request del-header X-Cohortroute-Version",
        "    http-request del-header X-Cohortroute-Reason",
        "    http-request set-var(txn.cr_host) req.hdr(host),field(1,:),lower,regsub(\\.$,)",
        f"    acl cr_ours var(txn.cr_host) -m reg {pattern}",
        # The whole Host as the router validates it; single quotes: no backslash processing.
        f"    acl cr_valid req.hdr(host) -m reg -i '{setup.host_pattern(ips=False)}'",
        f"    acl cr_ip req.hdr(host) -m reg -i '{setup.ip_pattern()}'",
        "    http-request return status 400 content-type text/plain string "
        '"host is not under any domain this server is configured for" '
        "unless cr_ours or cr_ip",
        "    http-request return status 400 content-type text/plain string "
        '"invalid Host" unless cr_valid or cr_ip',
        f"    http-request set-var(txn.cr_pool) var(txn.cr_host),map({map_path})",
        f"    http-request set-var(txn.cr_pool) str({DEFAULT_KEY}),map({map_path}) "
        "unless { var(txn.cr_pool) -m found }",
        f"    http-request return status 503 hdr Retry-After {setup.retry_after} "
        f"if {{ var(txn.cr_pool) -m str {MAINTENANCE} }}",
        "    http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    option forwardfor",
        "    use_backend %[var(txn.cr_pool)]",
        "",
    ]
    for version, servers in setup.pools.servers.items():
        out += [f"backend {pool_name(version)}  # version {version}", "    mode http"]
        out += ["    http-reuse safe"]
        out += [_server(index, address) for index, address in enumerate(servers, 1)]
        out.append("")
    return "\n".join(out)

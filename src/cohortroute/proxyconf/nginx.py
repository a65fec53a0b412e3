"""nginx: a ``map $host`` whose entries are an included file, one ``upstream`` per version.

The map file holds the default too (``default pool;``), so a ``finalize`` that changes the
default is one rewrite and a graceful ``nginx -s reload`` away, like a pin.
"""

from __future__ import annotations

import logging

from .decider import MAINTENANCE, pool_name
from .options import ProxySetup, comment
from .table import Table

log = logging.getLogger(__name__)


def map_file(table: Table) -> str:
    """The included map entries: ``default pool;`` then ``host pool;`` per known tenant."""
    lines = [comment("nginx"), f"# store revision {table.revision}", f"default {table.default};"]
    lines += [f"{host} {pool};" for host, pool in sorted(table.hosts.items())]
    return "\n".join(lines) + "\n"


def _server(address: str) -> str:
    return f"unix:{address[5:]}" if address.startswith("unix:") else address


def _location(setup: ProxySetup, decide: str | None) -> list[str]:
    """The routing ``location /``: by the map, or by asking the decision endpoint."""
    forward = [
        "        proxy_pass http://$cohortroute_pool;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;  # the build may resolve the tenant itself",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-Host $host;",
        '        proxy_set_header X-Cohortroute-Tenant "";  # never a client\'s own',
        '        proxy_set_header X-Cohortroute-Version "";',
        '        proxy_set_header X-Cohortroute-Reason "";',
        "    }",
    ]
    if decide is None:
        return [
            "    location / {",
            f"        if ($cohortroute_pool = {MAINTENANCE}) {{",
            f"            add_header Retry-After {setup.retry_after} always;",
            "            return 503;",
            "        }",
            *forward,
        ]
    return [
        "    location = /_cohortroute {  # cohortroute proxy decide",
        "        internal;",
        f"        proxy_pass http://{decide};",
        "        proxy_pass_request_body off;",
        '        proxy_set_header Content-Length "";',
        "        proxy_set_header Host $host;  # the decision is made for the Host",
        "    }",
        "    location @cohortroute_refused {",
        "        if ($cohortroute_status = 503) {",
        "            return 503;",
        "        }",
        "        return 400;",
        "    }",
        "    location / {",
        "        auth_request /_cohortroute;",
        "        auth_request_set $cohortroute_pool $upstream_http_x_cohortroute_pool;",
        "        auth_request_set $cohortroute_status $upstream_http_x_cohortroute_status;",
        "        error_page 403 = @cohortroute_refused;",
        *forward,
    ]


def config(setup: ProxySetup, decide: str | None = None) -> str:
    """The ``http {}`` fragment: the map (or, with ``decide``, ``auth_request`` to the decision
    endpoint at that ``host:port``), the upstreams and two servers (400 and routing)."""
    out = [comment("nginx"), "# Include it in the http {} block (conf.d/ does).", ""]
    if decide is None:
        out += ["map $host $cohortroute_pool {", f"    include {setup.map_path};", "}", ""]
    for version, servers in setup.pools.servers.items():
        out.append(f"upstream {pool_name(version)} {{  # version {version}")
        out += [f"    server {_server(address)};" for address in servers]
        out += ["    keepalive 32;", "}", ""]
    names = " ".join(f".{domain}" for domain in setup.domains)  # the domain and under it
    out += [
        "server {  # hosts under no domain: 400, as the router answers them",
        f"    listen {setup.listen} default_server;",
        "    server_name _;",
        "    default_type text/plain;",
        '    return 400 "host is not under any domain this server is configured for\\n";',
        "}",
        "",
        "server {",
        f"    listen {setup.listen};",
        f"    server_name {names};",
        *_location(setup, decide),
        "}",
    ]
    return "\n".join(out) + "\n"

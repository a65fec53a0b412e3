"""nginx: a ``map $host`` whose entries are an included file, one ``upstream`` per version.

The map file holds the default too (``default pool;``), so a ``finalize`` that changes the
default is one rewrite and a graceful ``nginx -s reload`` away, like a pin. A second file next
to it (:func:`sizes_path`) sets ``map_hash_bucket_size`` and ``map_hash_max_size`` for the map
as it is now: nginx's defaults (64 bytes, 2048) refuse one 63-character tenant label and warn
for a few thousand tenants, and the watch rewrites it before the map whenever they must grow.
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


_IP_NAMES = r"~^[0-9.]+$ ~^\[[0-9a-f:.]+\]$"


def sizes_path(map_path: str) -> str:
    """The file of ``map_hash_*`` directives the fragment includes, next to the map."""
    return f"{map_path}.sizes"


def _power_of_two(at_least: int) -> int:
    return 1 << max(0, at_least - 1).bit_length()


def hash_sizes(table: Table) -> tuple[int, int]:
    """(bucket size, max size) for nginx to build the map's hash at once, without a warning.

    A bucket holds at least two of the longest entries (nginx: a pointer plus the key and two
    bytes rounded up to 8, and a pointer ending the bucket); the table may have twice as many
    buckets as entries. Both are powers of two, so they change seldom as tenants come.
    """
    longest = max((len(host) for host in table.hosts), default=0)
    entry = 8 + (longest + 2 + 7) // 8 * 8
    return max(128, _power_of_two(2 * entry + 8)), max(2048, _power_of_two(2 * len(table.hosts)))


def sizes_file(table: Table) -> str:
    """The directives of :func:`sizes_path`, included in ``http {}`` before the map."""
    bucket, size = hash_sizes(table)
    lines = [comment("nginx"), f"map_hash_bucket_size {bucket};", f"map_hash_max_size {size};"]
    return "\n".join(lines) + "\n"


def _server(address: str) -> str:
    return f"unix:{address[5:]}" if address.startswith("unix:") else address


def _location(setup: ProxySetup, decide: str | None) -> list[str]:
    """The routing ``location /``: by the map, or by asking the decision endpoint."""
    forward = [
        "        proxy_pass http://$cohortroute_pool;",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Upgrade $http_upgrade;  # websockets: see the map above",
        "        proxy_set_header Connection $cohortroute_connection;",
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
        out += [
            "# map_hash_bucket_size and map_hash_max_size, sized for the map (set them nowhere",
            "# else in http {}: nginx refuses a second one; they suit any other map too).",
            f"include {sizes_path(setup.map_path)};",
            "map $host $cohortroute_pool {",
            f"    include {setup.map_path};",
            "}",
            "",
        ]
    out += [  # after the sizes: a map before them would fix nginx's defaults
        "# Connection to the builds: kept alive, or `upgrade` for a websocket handshake.",
        "map $http_upgrade $cohortroute_connection {",
        "    default upgrade;",
        '    "" "";',
        "}",
        "",
    ]
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
        f"    server_name {names} {_IP_NAMES};  # IP hosts: the default, as the router",
        "    # The Host as the router validates it (labels, one trailing dot, the port): any",
        "    # other spelling is 400 here as there.",
        f'    if ($http_host !~* "{setup.host_pattern()}") {{',
        '        return 400 "invalid Host\\n";',
        "    }",
        *_location(setup, decide),
        "}",
    ]
    return "\n".join(out) + "\n"

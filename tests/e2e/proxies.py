"""Debian's nginx, HAProxy and Apache httpd around a generated fragment, for tests on loopback.

Each ``*_main`` writes the smallest whole configuration that includes the fragment
``cohortroute proxy ...`` generated, with every runtime file in ``directory``; ``*_check`` is
the server's own syntax check, ``*_command`` runs it in the foreground.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

APACHE_MODULES = Path("/usr/lib/apache2/modules")


def installed(program: str) -> bool:
    """Whether Debian's ``program`` (nginx, haproxy, apache2) is on this machine."""
    return shutil.which(program) is not None or Path(f"/usr/sbin/{program}").exists()


@contextlib.contextmanager
def world_readable(prefix: str) -> Iterator[Path]:
    """A directory the proxies' unprivileged workers (www-data, nobody) can read."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def http_backend(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """``handler`` served on a free loopback port (yielded) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _binary(program: str) -> str:
    return shutil.which(program) or f"/usr/sbin/{program}"


def nginx_main(directory: Path, fragment: Path) -> Path:
    conf = directory / "nginx.conf"
    temps = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\n"
        f"error_log {directory}/nginx-error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temps}\n    include {fragment};\n}}\n"
    )
    return conf


def nginx_check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("nginx"), "-t", "-q", "-c", str(conf), "-p", str(conf.parent)],
        capture_output=True,
        text=True,
        check=False,
    )


def nginx_command(conf: Path) -> list[str]:
    return [_binary("nginx"), "-c", str(conf), "-p", str(conf.parent)]


def haproxy_main(directory: Path, fragment: Path) -> Path:
    conf = directory / "haproxy.cfg"
    conf.write_text(
        "global\n"
        f"    stats socket {directory}/haproxy-admin.sock level admin\n"
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n"
        "    timeout server 30s\n\n" + fragment.read_text()
    )
    return conf


def haproxy_check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("haproxy"), "-c", "-q", "-f", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def haproxy_command(conf: Path) -> list[str]:
    return [_binary("haproxy"), "-db", "-f", str(conf)]


def apache_main(directory: Path, fragment: Path, port: int) -> Path:
    modules = [
        "mpm_event",
        "authz_core",
        "rewrite",
        "headers",
        "proxy",
        "proxy_http",
        "proxy_balancer",
        "slotmem_shm",
        "lbmethod_byrequests",
    ]
    loads = "".join(
        f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n" for name in modules
    )
    conf = directory / "httpd.conf"
    conf.write_text(
        f"ServerRoot {directory}\n{loads}"
        f"PidFile {directory}/httpd.pid\nErrorLog {directory}/apache-error.log\n"
        f"DefaultRuntimeDir {directory}\nMutex file:{directory} default\n"
        f"Listen 127.0.0.1:{port}\nServerName localhost\n"
        "User www-data\nGroup www-data\nLogLevel warn\n"
        f"Include {fragment}\n"
    )
    return conf


def apache_check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("apache2"), "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )


def apache_command(conf: Path) -> list[str]:
    return [_binary("apache2"), "-f", str(conf), "-DFOREGROUND"]

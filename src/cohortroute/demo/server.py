"""Serving the demo: the router over the two versions, the listening socket, the banner.

Plain WSGI on werkzeug's threaded server: nothing to install. State lives in a SQLite file so
the CLI in another terminal changes what the demo serves.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shlex
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, TextIO
from urllib.parse import quote, unquote

from werkzeug.serving import get_sockaddr, make_server, select_address_family

from ..bucketing import BUCKETS, rollout_bucket
from ..errors import ListenError
from ..policy import format_percent
from ..router import WSGICohortRouter
from ..store import Store, open_store
from ..store._urls import redact
from .pages import Site, VersionApp
from .program import console_program
from .seed import (
    BETA_TAG,
    DOMAIN,
    LOOKS,
    NEW,
    QA_TENANT,
    SEED_TENANTS,
    STABLE,
    rollout_candidates,
    seed,
)

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 0.5
"""Seconds between the router's revision checks: CLI changes show on the next reload."""


def build_demo(
    store: Store, port: int, command: str, curl_host: str = "127.0.0.1"
) -> tuple[WSGICohortRouter, Site]:
    """The router over the two versions and the site they share, on ``store`` (seeded or not)."""
    site = Site(store=store, port=port, command=command, curl_host=curl_host)
    apps: Mapping[str, Any] = {version: VersionApp(version, site) for version in LOOKS}
    router = WSGICohortRouter(
        apps,
        default=STABLE,
        domains=[DOMAIN],
        store=store,
        refresh_interval=REFRESH_INTERVAL,
        # The demo answers every subdomain: registering what it serves would let any Host in.
        register_tenants=False,
    )
    site.router = router
    return router, site


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` ourselves, so a taken port is our error, not an exit(1).

    werkzeug's own bind prints and exits 1; binding first lets the demo exit 2 with advice.
    """
    where = f"{host}:{port}"
    family = select_address_family(host, port)
    try:
        address = get_sockaddr(host, port, family)
        return socket.create_server(address, family=family, backlog=128)
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # name resolution failed
            raise ListenError(
                f"cannot listen on {where}: unknown host {host!r}; use an address such as "
                "127.0.0.1 (the default) or 0.0.0.0"
            ) from exc
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            other = port + 1 if 0 < port < 65535 else 8001
            advice = (
                f"is another demo running? Pick another port, e.g. "
                f"`cohortroute demo --port {other}` (--port 0 picks a free one)"
            )
        elif exc.errno == errno.EACCES:
            advice = "ports below 1024 need privileges; use e.g. --port 8000"
        else:
            advice = "check --host (an address of this machine) and --port"
        raise ListenError(f"cannot listen on {where}: {reason}; {advice}.") from exc


def cli_store_url(url: str) -> str:
    """The store URL to print in commands: a relative SQLite path made absolute.

    ``sqlite:///demo.db`` is relative to the demo's working directory; the commands it prints
    must work from another terminal, so they name ``sqlite:////abs/path/demo.db``.
    """
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        return url
    path, sep, query = url[len(prefix) :].partition("?")
    if not path or path.startswith("/"):
        return url
    return prefix + quote(os.path.abspath(unquote(path))) + sep + query


def cli_command(store_url: str, program: str | None = None) -> str:
    """The CLI command the banner and pages suggest: absolute store path, credentials masked.

    ``program`` is how to run the CLI (default: :func:`~.program.console_program`, which
    works in a shell where the virtualenv is not activated).
    """
    run = console_program() if program is None else program
    return f"{run} --store {shlex.quote(redact(cli_store_url(store_url)))}"


def _try_lines(command: str, store: Store) -> list[str]:
    """The CLI commands the banner suggests, computed from the live state."""
    lines = [f"  {command} status", f"  {command} explain acme", f"  {command} pin globex {NEW}"]
    rollout = store.policy().rollout
    if rollout is None:
        lines.append(f"  {command} rollout start {NEW} --percent 10")
    else:
        buckets = ((rollout_bucket(rollout, t), t) for t in rollout_candidates())
        waiting = sorted((b, t) for b, t in buckets if b >= rollout.percent)  # its own bucketer
        if waiting:
            b, tenant = waiting[0]
            points = min(math.ceil((b + 1) / 100) * 100, BUCKETS)
            lines.append(
                f"  {command} rollout set {format_percent(points).rstrip('%')}"
                f"      # {tenant} joins the rollout of {rollout.candidate}"
            )
    lines.append(f"  {command} tag hooli {BETA_TAG}      # the rule {BETA_TAG} -> {NEW} applies")
    lines.append(f"  {command} history")
    return lines


def run_demo(*, host: str, port: int, store_url: str, out: TextIO) -> int:
    """Serve the demo until Ctrl-C (or SIGTERM), then return 0.

    Raises :class:`~cohortroute.errors.ListenError` before touching the store when it cannot
    listen on ``host:port``. Store URLs it prints (banner, hints) have credentials masked.
    """
    sock = listen(host, port)
    store: Store | None = None
    try:
        port = int(sock.getsockname()[1])
        store = open_store(store_url)
        seeded = seed(store)
        shown_url = redact(cli_store_url(store_url))
        command = cli_command(store_url)
        curl_host = _curl_host(host)
        router, site = build_demo(store, port, command, curl_host)
        server = make_server(host, port, router, threaded=True, fd=sock.fileno())
    except BaseException:
        sock.close()
        if store is not None:
            store.close()
        raise
    sock.close()  # the server holds its own duplicate of the listening socket
    policy = store.policy()
    state = (
        f"a fresh store, seeded: {len(SEED_TENANTS)} tenants, {QA_TENANT} pinned to {NEW}, "
        f"rule {BETA_TAG} -> {NEW}, rollout of {NEW} at "
        f"{format_percent(policy.rollout.percent if policy.rollout else 0)}"
        if seeded
        else f"an existing store (revision {policy.revision}), left as it is"
    )
    banner = [
        f"cohortroute demo: {STABLE} (stable) and {NEW} (new), routed per tenant.",
        f"State: {shown_url} -- {state}.",
        "",
        f"Open in a browser (*.{DOMAIN} resolves to this machine):",
        f"  http://{DOMAIN}:{port}/          every tenant, its version and why",
        f"  http://acme.{DOMAIN}:{port}/     tenant acme",
        "Or with curl, from anywhere:",
        f"  {site.curl('acme')}",
        "",
        "In another terminal, change who gets what (reload the page: it shows within a second):",
        *_try_lines(command, store),
        "",
        f"Listening on {host}:{port}. Press Ctrl-C to stop.",
    ]
    print("\n".join(banner), file=out, flush=True)
    restore = _stop_on_sigterm()
    try:
        server.serve_forever()  # returns on Ctrl-C (werkzeug catches KeyboardInterrupt)
    finally:
        restore()
        server.server_close()
        store.close()
    print("cohortroute demo: stopped.", file=out, flush=True)
    return 0


def _curl_host(host: str) -> str:
    """Where curl should connect: the bound address, or loopback for a wildcard bind."""
    if host in ("0.0.0.0", "", "localhost", "::"):
        return "127.0.0.1" if host != "::" else "[::1]"
    return f"[{host}]" if ":" in host else host


def _stop_on_sigterm() -> Callable[[], object]:
    """Make SIGTERM stop the server like Ctrl-C; returns a function that undoes it."""
    if threading.current_thread() is not threading.main_thread() or os.name == "nt":
        return lambda: None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)

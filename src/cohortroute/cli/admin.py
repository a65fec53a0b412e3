"""``cohortroute admin``: serve the operator's console (:mod:`cohortroute.admin`) standalone."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, ListenError
from .context import Context
from .options import Subparsers, add_command, port

if TYPE_CHECKING:
    from ..admin import AdminApp
    from ..store import Store

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    """Add ``admin``."""
    p = add_command(
        commands,
        "admin",
        cmd_admin,
        "serve the operator's console (a web page to see and steer rollouts)",
        description=(
            "Serve the operator's console for the store. Tokens come from "
            "$COHORTROUTE_ADMIN_TOKENS (actor:token,...), operators from "
            "$COHORTROUTE_ADMIN_OPERATORS (actor,...); everybody else may only read. Without "
            "tokens it only starts bound to loopback, where every visitor is an operator. "
            "Never expose it on a tenant's host: bind a separate port or host."
        ),
    )
    p.add_argument("--port", type=port, default=8700, help="port to listen on (default 8700)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_app(store: Store, host: str) -> AdminApp:
    """The console for ``store``; anonymous operators only when bound to loopback."""
    from ..admin import OPERATOR, AdminApp
    from ..admin.auth import tokens_from_env

    tokens = tokens_from_env()
    if not tokens and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve the admin console on {host} without authentication: set "
            "$COHORTROUTE_ADMIN_TOKENS=actor:token (16+ characters) or use --host 127.0.0.1"
        )
    if tokens:
        return AdminApp(store, tokens=tokens)
    # Without a login, only loopback names are answered: a page elsewhere that rebinds its own
    # DNS name to 127.0.0.1 would otherwise drive the console from the operator's browser.
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    return AdminApp(store, anonymous=OPERATOR, hosts=loopback)


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` ourselves: werkzeug's own bind prints its message and
    calls ``sys.exit(1)`` on a taken port, where the CLI says why in one line and exits 2."""
    from werkzeug.serving import get_sockaddr, select_address_family

    where = f"{host}:{port}"
    family = select_address_family(host, port)
    try:
        return socket.create_server(get_sockaddr(host, port, family), family=family, backlog=128)
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # name resolution failed
            reason = f"unknown host {host!r}"
            advice = "try --host 127.0.0.1"
        else:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            advice = "try --port (another number; 0 picks a free one)"
        raise ListenError(f"cannot listen on {where}: {reason}; {advice}") from exc


def cmd_admin(args: argparse.Namespace, ctx: Context) -> int:
    """Serve until Ctrl-C."""
    from werkzeug.serving import make_server

    ctx.store.revision()  # a store that does not exist is the CLI's error, not a page's 500
    sock = listen(args.host, args.port)
    try:
        app = build_app(ctx.store, args.host)
    except BaseException:
        sock.close()
        raise
    try:
        try:
            server = make_server(args.host, args.port, app, threaded=True, fd=sock.fileno())
        finally:
            sock.close()  # the server holds its own duplicate of the listening socket
        bound = server.socket.getsockname()[1]  # --port 0 picks one
        ctx.print(f"cohortroute admin on http://{args.host}:{bound}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        app.close()  # the signals sink it opened (the store is the CLI's)
    return 0

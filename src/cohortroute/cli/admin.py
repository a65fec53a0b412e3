"""``cohortroute admin``: serve the operator's console (:mod:`cohortroute.admin`) standalone."""

from __future__ import annotations

import argparse
import ipaddress
import logging
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


def cmd_admin(args: argparse.Namespace, ctx: Context) -> int:
    """Serve until Ctrl-C."""
    from werkzeug.serving import make_server

    app = build_app(ctx.store, args.host)
    try:
        try:
            server = make_server(args.host, args.port, app, threaded=True)
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror}; try --port"
            ) from exc
        ctx.print(f"cohortroute admin on http://{args.host}:{server.server_port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        app.close()  # the signals sink it opened (the store is the CLI's)
    return 0

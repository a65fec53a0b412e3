"""``cohortroute demo``: the verb that starts :mod:`cohortroute.demo` (which never imports cli)."""

from __future__ import annotations

import argparse
import logging

from .context import Context
from .options import Subparsers, add_command, port

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    """Add ``demo``."""
    p = add_command(
        commands,
        "demo",
        cmd_demo,
        "serve two versions of a small app on localhost to try cohortroute",
        description=(
            "Serve two bundled versions of a small app under the domain localhost, with a few "
            "seeded tenants, a pin, a tag rule and a rollout. State lives in a SQLite file "
            "(./cohortroute-demo.db unless --store is given; $COHORTROUTE_STORE is ignored "
            "so the demo never writes into your real store)."
        ),
        store_help=(
            "the store for the demo's state (default: sqlite:///cohortroute-demo.db; "
            "$COHORTROUTE_STORE is not read)"
        ),
    )
    p.add_argument("--port", type=port, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    """Serve the bundled demo until Ctrl-C; a port or host it cannot use raises ListenError."""
    from ..demo import DEFAULT_STORE, run_demo

    # Only an explicit --store counts: $COHORTROUTE_STORE may name a real store, and the demo
    # registers its own versions and seeds tenants.
    url = getattr(args, "store", None) or DEFAULT_STORE
    return run_demo(host=args.host, port=args.port, store_url=url, out=ctx.out)

"""The ``proxy`` commands: let nginx, Apache or HAProxy route, from the same store and rules.

``proxy nginx|apache|haproxy`` writes the map of every known tenant's host -> version pool and
the configuration fragment reading it (``--watch`` keeps the map current); ``proxy decide``
serves the decision endpoint (nginx ``auth_request``, forward-auth); ``proxy prg`` is Apache's
``RewriteMap prg:`` program.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from .context import EXIT_OK, Context, UsageError
from .options import Subparsers, add_command, add_group

log = logging.getLogger(__name__)

FORMATS = ("nginx", "apache", "haproxy")


def _routing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--domain",
        dest="domains",
        action="append",
        required=True,
        metavar="DOMAIN",
        help="a domain tenants are subdomains of, as the router's domains= (repeat for more)",
    )
    p.add_argument(
        "--upstream",
        dest="upstreams",
        action="append",
        required=True,
        metavar="VERSION=ADDRESS",
        help="a server of a version: 2026.12=127.0.0.1:8002 or 2026.12=unix:/run/b.sock "
        "(repeat per server and version; versions without one are served the default)",
    )
    p.add_argument(
        "--reserved",
        action="append",
        metavar="LABEL",
        help="a label that is not a tenant (default: www)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the store is checked for changes (default 1)",
    )


def register(commands: Subparsers) -> None:
    """Add ``proxy nginx|apache|haproxy``, ``proxy decide`` and ``proxy prg``."""
    group = add_group(
        commands,
        "proxy",
        "let nginx, Apache or HAProxy route: generated maps, a decision endpoint",
        description=(
            "Route with the web server in front instead of the Python router: the same store "
            "and the same decision rules, written as the server's map (kept current with "
            "--watch), or asked per request (decide, prg). See docs/deploying.md."
        ),
    )
    for name in FORMATS:
        p = add_command(
            group,
            name,
            _cmd_config,
            f"write the {name} map (host -> version pool) and configuration fragment",
        )
        _routing_options(p)
        p.set_defaults(format=name)
        p.add_argument(
            "--map", dest="map_path", required=True, metavar="PATH", help="the map file to write"
        )
        p.add_argument(
            "--config",
            dest="config_path",
            metavar="PATH",
            help="write the configuration fragment here (default: print it)",
        )
        p.add_argument("--listen", default="80", help="the address the proxy serves on (80)")
        p.add_argument(
            "--watch", action="store_true", help="keep running: rewrite the map on every change"
        )
        if name == "nginx":
            p.add_argument(
                "--decide",
                metavar="HOST:PORT",
                help="route with auth_request to `cohortroute proxy decide` at HOST:PORT "
                "instead of the map (exact for tenants the store does not list)",
            )
            p.add_argument(
                "--reload-command",
                default="nginx -s reload",
                metavar="COMMAND",
                help="run after the map changed, with --watch (default: nginx -s reload)",
            )
        if name == "haproxy":
            p.add_argument(
                "--runtime-api",
                metavar="ADDRESS",
                help="HAProxy's stats socket (unix:/run/haproxy/admin.sock, level admin): "
                "with --watch, changes are applied live with set map, no reload",
            )
        if name == "apache":
            p.add_argument(
                "--prg",
                action="store_true",
                help="use a RewriteMap prg: program deciding each host live instead of the "
                "txt: map (the map file is still written, for reference)",
            )
    p = add_command(group, "decide", _cmd_decide, "serve the decision endpoint (auth_request)")
    _routing_options(p)
    p.add_argument("--listen", default="127.0.0.1:8090", help="HOST:PORT (127.0.0.1:8090)")
    p.add_argument(
        "--host-header",
        default="Host",
        metavar="NAME",
        help="the header with the original host (X-Forwarded-Host for forward-auth proxies "
        "that set it themselves; default Host)",
    )
    p = add_command(group, "prg", _cmd_prg, "Apache's RewriteMap prg: program (host in, pool out)")
    _routing_options(p)


def _decider(args: argparse.Namespace, ctx: Context) -> Any:
    from ..proxyconf.decider import Decider, Pools
    from ..tenancy import DEFAULT_RESERVED

    if args.interval <= 0:
        raise UsageError("--interval must be seconds > 0")
    return Decider(
        ctx.store,
        Pools.parse(args.upstreams),
        domains=args.domains,
        reserved=args.reserved if args.reserved is not None else DEFAULT_RESERVED,
        refresh_interval=args.interval,
    )


def _until_signalled(run: Callable[[threading.Event], None]) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(stop)


def _cmd_config(args: argparse.Namespace, ctx: Context) -> int:
    from ..proxyconf import apache, haproxy, nginx
    from ..proxyconf.options import ProxySetup
    from ..proxyconf.watch import HAProxyRuntime, Notify, Watch, reload_command

    decider = _decider(args, ctx)
    module: Any = {"nginx": nginx, "apache": apache, "haproxy": haproxy}[args.format]
    setup = ProxySetup(tuple(decider.domains), decider.pools, args.map_path, args.listen)
    if args.format == "apache" and args.prg:
        program = [sys.executable, "-m", "cohortroute", "--store", ctx.store_url or ""]
        program += ["proxy", "prg"]
        for option, values in (("--domain", args.domains), ("--upstream", args.upstreams)):
            for value in values:
                program += [option, value]
        fragment = apache.config(setup, program)
    elif args.format == "nginx" and args.decide:
        fragment = nginx.config(setup, args.decide)
    else:
        fragment = module.config(setup)
    if args.config_path:
        from ..proxyconf.watch import write_atomically

        write_atomically(args.config_path, fragment)
    else:
        ctx.out.write(fragment)
    notify: Notify | None = None
    if args.watch and args.format == "nginx":
        notify = reload_command(shlex.split(args.reload_command))
    if args.watch and args.format == "haproxy" and args.runtime_api:
        runtime = HAProxyRuntime(args.runtime_api, args.map_path)
        notify = runtime.apply
    watch = Watch(decider, module.map_file, args.map_path, notify=notify, interval=args.interval)
    try:
        watch.step()
        if args.watch:
            ctx.err.write(f"watching the store; the map is {args.map_path} (Ctrl-C stops)\n")
            ctx.err.flush()
            _until_signalled(watch.run)
    finally:
        decider.close()
    return EXIT_OK


def _cmd_decide(args: argparse.Namespace, ctx: Context) -> int:
    from werkzeug.serving import WSGIRequestHandler, make_server

    from ..proxyconf.endpoint import DecisionEndpoint

    decider = _decider(args, ctx)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen {args.listen!r}: give HOST:PORT, e.g. 127.0.0.1:8090")

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # a line per lookup costs more than the lookup, and says nothing new

    server = make_server(
        host or "127.0.0.1",
        int(port),
        DecisionEndpoint(decider, args.host_header),
        threaded=True,
        request_handler=QuietHandler,
    )
    ctx.err.write(f"decision endpoint on http://{args.listen}/ (Ctrl-C stops)\n")
    ctx.err.flush()

    def serve(stop: threading.Event) -> None:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stop.wait()
        server.shutdown()

    try:
        _until_signalled(serve)
    finally:
        server.server_close()
        decider.close()
    return EXIT_OK


def _cmd_prg(args: argparse.Namespace, ctx: Context) -> int:
    from ..proxyconf.prg import serve

    decider = _decider(args, ctx)
    try:
        serve(decider, sys.stdin, ctx.out)
    finally:
        decider.close()
    return EXIT_OK

"""The ``proxy`` commands: let nginx, Apache or HAProxy route, from the same store and rules.

``proxy nginx|apache|haproxy`` writes the map of every known tenant's host -> version pool and
the configuration fragment reading it (``--watch`` keeps the map current); ``proxy decide``
serves the decision endpoint (nginx ``auth_request``, forward-auth); ``proxy prg`` is Apache's
``RewriteMap prg:`` program.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import CohortRouteError
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
                default=None,
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
    p.add_argument(
        "--store-file",
        metavar="PATH",
        help="read the store URL from this file (`proxy apache --prg` writes one, mode 0600, "
        "so a password is not on the command line or in Apache's configuration)",
    )


def _decider(args: argparse.Namespace, ctx: Context) -> Any:
    from ..proxyconf.decider import Decider, Pools
    from ..tenancy import DEFAULT_RESERVED

    if not math.isfinite(args.interval) or args.interval <= 0:
        raise UsageError(
            f"--interval {args.interval}: --interval must be a number of seconds > 0, "
            "e.g. --interval 1"
        )
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


def _writable(path: str, option: str) -> None:
    """Refuse, before anything is printed or written, a file that cannot be written there."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{option} {path}: the directory {directory} is not writable")


def _reload_command(text: str) -> list[str]:
    """``--reload-command`` as argv, its program found now (on PATH, else in the sbin
    directories where nginx is for a user without them on PATH): a typo is a usage error."""
    words = shlex.split(text)
    if not words:
        raise UsageError("--reload-command is empty: give e.g. 'nginx -s reload'")
    found = shutil.which(words[0])
    if found is None and "/" not in words[0]:
        found = shutil.which(words[0], path=os.pathsep.join(_SBIN))
    if found is None:
        raise UsageError(
            f"--reload-command {text!r}: {words[0]!r} is not an executable program on PATH "
            f"or in {', '.join(_SBIN)}; give its full path, e.g. "
            "--reload-command '/usr/sbin/nginx -s reload' or 'systemctl reload nginx'"
        )
    return [found, *words[1:]]


_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _listen(args: argparse.Namespace) -> str:
    from ..proxyconf.options import split_host_port, url_host

    host, port = split_host_port(args.listen, "--listen", port_alone=True)
    return f"{url_host(host)}:{port}" if host else str(port)


def _prg_program(args: argparse.Namespace, ctx: Context) -> list[str]:
    """The ``proxy prg`` command line Apache runs. The store URL (which may hold a password)
    is not on it: it is in a file only its owner reads (0600), next to the map."""
    from ..proxyconf.watch import write_atomically

    url_file = f"{args.map_path}.store"
    url = ctx.store_url or ""
    ctx.store.revision()  # the URL works: a wrong one is said now, not by Apache's error log
    write_atomically(url_file, url + "\n", mode=0o600)
    program = [sys.executable, "-m", "cohortroute", "proxy", "prg", "--store-file", url_file]
    for option, values in (("--domain", args.domains), ("--upstream", args.upstreams)):
        for value in values:
            program += [option, value]
    return program


def _cmd_config(args: argparse.Namespace, ctx: Context) -> int:
    from ..proxyconf import apache, haproxy, nginx
    from ..proxyconf.options import ProxySetup, split_host_port
    from ..proxyconf.watch import HAProxyRuntime, Notify, Watch, reload_command

    listen = _listen(args)
    _writable(args.map_path, "--map")
    if args.config_path:
        _writable(args.config_path, "--config")
    notify: Notify | None = None
    for option in ("reload_command", "runtime_api"):
        if getattr(args, option, None) is not None and not args.watch:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"{flag} tells the proxy about a changed map, which only --watch writes: add "
                f"--watch, or leave {flag} out to write the map once"
            )
    if args.watch and args.format == "nginx" and not args.decide:
        notify = reload_command(_reload_command(args.reload_command or "nginx -s reload"))
    if getattr(args, "decide", None):
        split_host_port(args.decide, "--decide")
    if getattr(args, "runtime_api", None):
        _runtime_api(args.runtime_api)
    decider = _decider(args, ctx)
    try:
        module: Any = {"nginx": nginx, "apache": apache, "haproxy": haproxy}[args.format]
        setup = ProxySetup(tuple(decider.domains), decider.pools, args.map_path, listen)
        also: list[tuple[str, Callable[[Any], str]]] = []
        if args.format == "apache" and args.prg:
            fragment = apache.config(setup, _prg_program(args, ctx))
        elif args.format == "nginx" and args.decide:
            fragment = nginx.config(setup, args.decide)
        else:
            fragment = module.config(setup)
            if args.format == "nginx":
                also.append((nginx.sizes_path(args.map_path), nginx.sizes_file))
        if args.watch and args.format == "haproxy" and args.runtime_api:
            notify = HAProxyRuntime(args.runtime_api, args.map_path).apply
        watch = Watch(
            decider,
            module.map_file,
            args.map_path,
            notify=notify,
            also=also,
            interval=args.interval,
        )
        if args.config_path:
            _write(args.config_path, fragment)
        else:
            ctx.out.write(fragment)
        if not args.watch:
            _write_step(watch)
            return EXIT_OK
        watch.try_step()  # a proxy not up yet is said and retried, as every later step
        ctx.err.write(f"watching the store; the map is {args.map_path} (Ctrl-C stops)\n")
        ctx.err.flush()
        _until_signalled(watch.run)
    finally:
        decider.close()
    return EXIT_OK


def _runtime_api(address: str) -> None:
    """Refuse now a ``--runtime-api`` that can never be reached (the watch retries the rest)."""
    from ..errors import ConfigurationError
    from ..proxyconf.options import check_server

    try:
        check_server(address, "--runtime-api")
    except ConfigurationError:
        raise UsageError(
            f"--runtime-api {address!r}: give unix:/path/to/admin.sock (HAProxy's "
            "`stats socket PATH level admin`) or HOST:PORT"
        ) from None


def _write(path: str, text: str) -> None:
    from ..proxyconf.watch import write_atomically

    try:
        write_atomically(path, text)
    except OSError as exc:
        raise CohortRouteError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_step(watch: Any) -> None:
    try:
        watch.step()
    except OSError as exc:
        raise CohortRouteError(f"cannot write the map {watch.map_path}: {exc}") from None


def _cmd_decide(args: argparse.Namespace, ctx: Context) -> int:
    from werkzeug.serving import WSGIRequestHandler, make_server

    from ..proxyconf.endpoint import DecisionEndpoint
    from ..proxyconf.options import split_host_port, url_host

    host, port = split_host_port(args.listen, "--listen")
    decider = _decider(args, ctx)

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # a line per lookup costs more than the lookup, and says nothing new

    try:
        server = make_server(
            host,
            port,
            DecisionEndpoint(decider, args.host_header),
            threaded=True,
            request_handler=QuietHandler,
        )
    except OSError as exc:
        decider.close()
        message = f"--listen {args.listen}: cannot listen there ({exc.strerror or exc})"
        raise UsageError(message) from None
    ctx.err.write(f"decision endpoint on http://{url_host(host)}:{port}/ (Ctrl-C stops)\n")
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

    if args.store_file:
        try:
            ctx.store_url = Path(args.store_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--store-file {args.store_file}: {exc.strerror or exc}") from None
    decider = _decider(args, ctx)
    try:
        serve(decider, sys.stdin, ctx.out)
    finally:
        decider.close()
    return EXIT_OK

"""``cohortroute demo``: two versions of a small app behind a router, to try cohortroute locally.

The demo serves ``2026.11`` (stable) and ``2026.12`` (new) under the domain ``localhost``:
browsers resolve ``acme.localhost`` to this machine, so ``http://acme.localhost:8000/`` is tenant
``acme``. Every page says which version served it, the tenant, and why (the decision the router
put in ``environ["cohortroute.decision"]``). The apex ``http://localhost:8000/`` lists the tenants.

State lives in a SQLite file so the CLI in another terminal changes what the demo serves. An
empty store is seeded with tenants, a pinned QA account, a tag rule and a small rollout; an
existing store is never touched. Plain WSGI and werkzeug's threaded server: nothing to install.
"""

from __future__ import annotations

import contextlib
import errno
import html
import math
import os
import shlex
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote, unquote

from werkzeug.serving import get_sockaddr, make_server, select_address_family

from .bucketing import BUCKETS, bucket
from .decision import Decision, Reason
from .errors import CohortRouteError
from .policy import Policy, format_percent
from .router import DECISION_KEY, TENANT_KEY, CohortRouter, WSGICohortRouter
from .store.base import Store, open_store

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

DEFAULT_STORE = "sqlite:///cohortroute-demo.db"
"""Where the demo keeps its state unless ``--store`` says otherwise (relative to the cwd)."""

STABLE = "2026.11"
NEW = "2026.12"
DOMAIN = "localhost"
REFRESH_INTERVAL = 0.5
"""Seconds between the router's revision checks: CLI changes show on the next reload."""

ACTOR = "cohortroute-demo"

# Seeded tenants and their tags. Plan tags have no rule (try `cohortroute rule pro 2026.12`);
# ``beta`` has one; ``qa`` is the internal test account pinned to the new version.
SEED_TENANTS: dict[str, tuple[str, ...]] = {
    "acme": ("pro",),
    "globex": ("enterprise",),
    "hooli": ("pro",),
    "initech": ("free", "beta"),
    "qa": ("internal",),
    "soylent": ("free",),
    "stark": ("free",),
    "umbrella": ("enterprise",),
    "wayne": ("pro",),
    "wonka": ("pro",),
}
QA_TENANT = "qa"
BETA_TAG = "beta"
ROLLOUT_SALT = "demo"
"""A fixed salt, so every fresh demo puts the same tenants in the rollout."""


@dataclass(frozen=True)
class Look:
    """How one version looks: its role in the heading and its colour."""

    role: str
    colour: str
    tagline: str


LOOKS: dict[str, Look] = {
    STABLE: Look("stable", "#1d4ed8", "The version everybody is on."),
    NEW: Look("new", "#9333ea", "The redesign, rolling out tenant by tenant."),
}


# --- seeding ---------------------------------------------------------------------------------


def rollout_percent(salt: str, tenants: Iterable[str]) -> int:
    """Basis points for a small rollout that takes some, but not all, of ``tenants``.

    The smallest multiple of 5 % above the lowest bucket: with the seeded tenants and salt that
    puts one or two of them on the new version, so the first page already shows both.
    """
    buckets = sorted(bucket(salt, t) for t in tenants)
    if not buckets:
        return 500
    points = math.ceil((buckets[0] + 1) / 500) * 500
    if points > buckets[-1] and buckets[-1] - buckets[0] > 1:
        points = buckets[-1]  # never everybody: the highest bucket stays out
    return min(points, BUCKETS)


def rollout_candidates() -> list[str]:
    """The seeded tenants the rollout decides for: neither pinned nor caught by a tag rule."""
    return [t for t, tags in SEED_TENANTS.items() if t != QA_TENANT and BETA_TAG not in tags]


def seed(store: Store, *, actor: str = ACTOR) -> bool:
    """Fill an empty store with the demo's tenants, pin, rule and rollout; False if not empty.

    A store with any history (revision > 0) is left alone: it may be a demo the user has
    changed, or not a demo store at all.
    """
    if store.revision() != 0:
        return False
    store.register_versions([STABLE, NEW], STABLE, actor=actor)
    for tenant, tags in SEED_TENANTS.items():
        for tag in tags:
            store.tag(tenant, tag, actor=actor)
    store.pin(QA_TENANT, NEW, actor=actor)
    store.set_rule(BETA_TAG, NEW, actor=actor)
    percent = rollout_percent(ROLLOUT_SALT, rollout_candidates())
    store.start_rollout(NEW, format_percent(percent), salt=ROLLOUT_SALT, actor=actor)
    return True


# --- the two versions --------------------------------------------------------------------------


@dataclass
class Site:
    """What the version apps share: the store, the URLs to print, and the router (for the index)."""

    store: Store
    port: int
    command: str
    curl_host: str = "127.0.0.1"
    router: CohortRouter | None = None
    tenants: tuple[str, ...] = field(default=tuple(SEED_TENANTS))

    def url(self, tenant: str | None = None) -> str:
        """The browser URL of a tenant (or of the index when None)."""
        host = DOMAIN if tenant is None else f"{tenant}.{DOMAIN}"
        return f"http://{host}:{self.port}/"

    def curl(self, tenant: str) -> str:
        """The curl command that requests a tenant's page without DNS help."""
        return f"curl -H 'Host: {tenant}.{DOMAIN}:{self.port}' http://{self.curl_host}:{self.port}/"

    def listed_tenants(self) -> list[str]:
        """The seeded tenants plus any with a stored record (added from the CLI)."""
        names = set(self.tenants)
        # When the store fails the router serves its last-known state; list what we can.
        with contextlib.suppress(CohortRouteError):
            names.update(record.name for record in self.store.tenants())
        return sorted(names)

    def hints(self, decision: Decision) -> list[str]:
        """What would move this tenant, with the CLI commands (empty if the store fails)."""
        from .cli import explain_hints

        if decision.tenant is None or decision.reason is Reason.OVERRIDE:
            return []
        try:
            policy: Policy = self.store.policy()
            record = self.store.tenant(decision.tenant)
            return explain_hints(decision, policy, record, self.command)
        except CohortRouteError:
            return []


class VersionApp:
    """One version of the demo app: a plain WSGI app that shows who it served and why."""

    def __init__(self, version: str, site: Site) -> None:
        self.version = version
        self.look = LOOKS[version]
        self.site = site

    @property
    def title(self) -> str:
        """``2026.12 (new)``: the heading that tells the versions apart."""
        return f"{self.version} ({self.look.role})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if environ.get("PATH_INFO", "/") == "/favicon.ico":
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        decision: Decision | None = environ.get(DECISION_KEY)
        tenant: str | None = environ.get(TENANT_KEY)
        html_wanted = "text/html" in environ.get("HTTP_ACCEPT", "")
        if tenant is None:
            body = self.index_html() if html_wanted else self.index_text()
        else:
            body = self.tenant_html(decision) if html_wanted else self.tenant_text(decision)
        data = body.encode()
        headers = [
            ("Content-Type", f"text/{'html' if html_wanted else 'plain'}; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Cohortroute-Version", self.version),
            ("X-Cohortroute-Tenant", tenant or ""),
            ("X-Cohortroute-Reason", decision.reason.value if decision else ""),
        ]
        start_response("200 OK", headers)
        return [data]

    # --- one tenant ----------------------------------------------------------------------

    def tenant_text(self, decision: Decision | None) -> str:
        """The page for curl: the version, the tenant and why, one per line."""
        lines = [
            f"cohortroute demo -- {self.title}",
            f"tenant:  {decision.tenant if decision else '-'}",
            f"version: {self.version}",
        ]
        if decision is not None:
            lines.append(f"reason:  {decision.reason.value} ({decision.detail})")
            lines.extend(f"  - {hint}" for hint in self.site.hints(decision))
        lines.append(f"all tenants: {self.site.url()}")
        return "\n".join(lines) + "\n"

    def tenant_html(self, decision: Decision | None) -> str:
        """The browser page of one tenant."""
        e = html.escape
        tenant = decision.tenant if decision else None
        hints = self.site.hints(decision) if decision else []
        why = (
            f"<p class=why><b>{e(decision.reason.value)}</b> &mdash; {e(decision.detail)}</p>"
            if decision
            else ""
        )
        items = "".join(f"<li>{_code(hint)}</li>" for hint in hints)
        content = f"""
<p class=lead>Tenant <b>{e(tenant or "-")}</b> is served by version <b>{e(self.version)}</b>.</p>
<h2>Why</h2>{why}
{f"<h2>What would change it</h2><ul>{items}</ul>" if items else ""}
<p>Run a command in another terminal, then reload: the router picks changes up within a
second.</p>
<p><a href="{e(self.site.url())}">&larr; all tenants</a></p>"""
        return self.page(f"{tenant} on {self.version}", content)

    # --- the index -------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, Decision | None]]:
        router = self.site.router
        rows: list[tuple[str, Decision | None]] = []
        for name in self.site.listed_tenants():
            try:
                rows.append((name, router.explain(name) if router else None))
            except CohortRouteError:
                rows.append((name, None))
        return rows

    def index_text(self) -> str:
        """The index for curl: every listed tenant with its version and reason."""
        lines = [f"cohortroute demo -- index served by {self.title}", ""]
        for name, decision in self._rows():
            if decision is None:
                lines.append(f"{name:<10} (store unavailable)")
            else:
                lines.append(
                    f"{name:<10} {decision.version:<8} {decision.reason.value:<8} {decision.detail}"
                )
        lines.append("")
        lines.append(f"one tenant: {self.site.curl('acme')}")
        return "\n".join(lines) + "\n"

    def index_html(self) -> str:
        """The browser index: every listed tenant as a link, with its version and why."""
        e = html.escape
        rows = []
        for name, decision in self._rows():
            if decision is None:
                rows.append(f"<tr><td>{e(name)}</td><td colspan=3>store unavailable</td></tr>")
                continue
            look = LOOKS.get(decision.version)
            colour = look.colour if look else "#555"
            rows.append(
                f'<tr><td><a href="{e(self.site.url(name))}">{e(name)}.{DOMAIN}</a></td>'
                f'<td><span class=badge style="background:{colour}">{e(decision.version)}'
                f"</span></td><td>{e(decision.reason.value)}</td><td>{e(decision.detail)}</td></tr>"
            )
        command = e(self.site.command)
        content = f"""
<h2>Tenants</h2>
<p class=lead>Each tenant is a subdomain of <code>{DOMAIN}</code>; the router decides which
version serves it. Click one, or use curl with a Host header.</p>
<table><tr><th>tenant</th><th>version</th><th>reason</th><th>detail</th></tr>
{"".join(rows)}</table>
<h2>Try</h2>
<ul>
<li><code>{command} explain acme</code></li>
<li><code>{command} pin globex {NEW}</code> &mdash; then reload globex</li>
<li><code>{command} tag hooli {BETA_TAG}</code> &mdash; the rule {BETA_TAG} &rarr; {NEW}
applies</li>
<li><code>{command} rollout set 50</code></li>
<li><code>{command} history</code></li>
</ul>
<p>This index is itself served by the default version, {e(self.version)}: the apex
<code>{DOMAIN}</code> has no tenant.</p>"""
        return self.page("tenants", content)

    def page(self, title: str, content: str) -> str:
        """The HTML shell, in this version's colour, with its heading."""
        e = html.escape
        colour = self.look.colour
        return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<link rel=icon href="data:,">
<title>{e(title)} &middot; {e(self.title)}</title>
<style>
body {{ margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #111; background: #f6f6f8; }}
header {{ background: {colour}; color: #fff; padding: 1.5rem 2rem; }}
header h1 {{ margin: 0; font-size: 2rem; }}
header p {{ margin: .25rem 0 0; opacity: .85; }}
main {{ padding: 1rem 2rem 2rem; max-width: 60rem; }}
.lead {{ font-size: 1.2rem; }}
.why {{ border-left: 4px solid {colour}; padding-left: .75rem; }}
code {{ background: #e9e9ef; padding: .1rem .3rem; border-radius: 3px; font-size: .9em; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: .3rem .8rem .3rem 0; border-bottom: 1px solid #ddd; }}
.badge {{ color: #fff; padding: .1rem .5rem; border-radius: 1rem; font-size: .9em; }}
a {{ color: {colour}; }}
</style></head><body>
<header><h1>{e(self.title)}</h1><p>cohortroute demo &middot; {e(self.look.tagline)}</p></header>
<main>{content}</main></body></html>
"""


def _code(text: str) -> str:
    """Escape ``text`` and show its `backticked` parts as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


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
    )
    site.router = router
    return router, site


# --- serving -----------------------------------------------------------------------------------


class ListenError(Exception):
    """The demo cannot listen where it was asked to; the message says what to try."""


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


def _try_lines(command: str, store: Store) -> list[str]:
    """The CLI commands the banner suggests, computed from the live state."""
    lines = [f"  {command} status", f"  {command} explain acme", f"  {command} pin globex {NEW}"]
    rollout = store.policy().rollout
    if rollout is None:
        lines.append(f"  {command} rollout start {NEW} --percent 10")
    else:
        waiting = sorted(
            (bucket(rollout.salt, t), t)
            for t in rollout_candidates()
            if bucket(rollout.salt, t) >= rollout.percent
        )
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


def run_demo(*, host: str, port: int, store_url: str, out: TextIO, err: TextIO) -> int:
    """Serve the demo until Ctrl-C (or SIGTERM); 2 when the port is taken, else 0."""
    try:
        sock = listen(host, port)
    except ListenError as exc:
        print(f"cohortroute: error: {exc}", file=err)
        return 2
    store: Store | None = None
    try:
        port = int(sock.getsockname()[1])
        store = open_store(store_url)
        seeded = seed(store)
        shown_url = cli_store_url(store_url)
        command = f"cohortroute --store {shlex.quote(shown_url)}"
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

"""The demo's two versions: one plain WSGI app per version that shows who it served and why.

Every page names the version that served it, the tenant, and the decision the router put in
``environ["cohortroute.decision"]``, with the commands that would change it
(:mod:`cohortroute.explain`). Browsers get HTML; curl gets plain text. The apex lists the tenants.
"""

from __future__ import annotations

import contextlib
import html
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._clock import SYSTEM, Clock
from ..decision import Decision, Reason
from ..errors import CohortRouteError
from ..explain import hints
from ..router import DECISION_KEY, TENANT_KEY, CohortRouter
from ..store import Store
from .seed import BETA_TAG, DOMAIN, LOOKS, NEW, SEED_TENANTS

if TYPE_CHECKING:
    from .._types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


@dataclass
class Site:
    """What the version apps share: the store, the URLs to print, and the router (for the index)."""

    store: Store
    port: int
    command: str
    curl_host: str = "127.0.0.1"
    router: CohortRouter | None = None
    tenants: tuple[str, ...] = field(default=tuple(SEED_TENANTS))
    clock: Clock = SYSTEM

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
        if decision.tenant is None or decision.reason is Reason.OVERRIDE:
            return []
        try:
            policy = self.store.policy()
            record = self.store.tenant(decision.tenant)
            return hints(decision, policy, record, now=self.clock.time(), command=self.command)
        except CohortRouteError:
            log.debug("no hints for %s: the store failed", decision.tenant, exc_info=True)
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

"""Building the console's HTML: every user-controlled string goes through :func:`esc`.

Pages are plain Python strings: :class:`Html` marks text that is already safe markup, and
everything else is escaped when it is put into a page, so a tenant name, a reason, a ticket's
text or an actor can never become markup.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

log = logging.getLogger(__name__)


class Html(str):
    """A string of markup that is already safe to put into a page as it is."""

    __slots__ = ()

    def __add__(self, other: object) -> Html:
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: object) -> Html:
        return Html(str.__add__(esc(other), self))


def esc(value: object) -> Html:
    """``value`` as safe markup: escaped unless it is :class:`Html` already."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    """Escape and join ``parts``."""
    return Html(sep.join(esc(p) for p in parts))


def tag(name: str, body: object = "", **attrs: object) -> Html:
    """``<name attrs>body</name>``; attribute names use ``_`` for ``-``, a trailing ``_`` is cut."""
    rendered = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"'
        for k, v in attrs.items()
        if v is not None and v is not False
    )
    return Html(f"<{name}{rendered}>{esc(body)}</{name}>")


def link(href: str, text: object, **attrs: object) -> Html:
    """A link."""
    return tag("a", text, href=href, **attrs)


def url(base: str, path: str, **query: object) -> str:
    """``base + path`` with the non-empty ``query`` values."""
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return base + path + ("?" + urlencode(params) if params else "")


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Html:
    """A table with a caption and column headers (``scope="col"``)."""
    head = join(tag("th", h, scope="col") for h in headers)
    body = join(tag("tr", join(tag("td", c) for c in row)) for row in rows)
    return Html(
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def definitions(items: Mapping[str, object], *, live: bool = False) -> Html:
    """A description list of ``label: value`` pairs; ``live`` marks each value for admin.js."""
    pairs = "".join(
        f"<dt>{esc(k)}</dt>{tag('dd', v, data_live=k if live else None)}" for k, v in items.items()
    )
    return Html(f"<dl>{pairs}</dl>")


def hidden(name: str, value: object) -> Html:
    """A hidden form field."""
    return Html(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">')


def field(name: str, label: str, value: object = "", kind: str = "text", **attrs: object) -> Html:
    """A labelled input (the label's ``for`` names the input's id)."""
    ident = f"f-{name}"
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return Html(
        f'<label for="{ident}">{esc(label)}</label> '
        f'<input id="{ident}" name="{esc(name)}" type="{esc(kind)}" value="{esc(value)}"{extra}>'
    )


def select(name: str, label: str, choices: Iterable[str]) -> Html:
    """A labelled drop-down list."""
    options = join(tag("option", c, value=c) for c in choices)
    return Html(
        f'<label for="f-{esc(name)}">{esc(label)}</label> '
        f'<select id="f-{esc(name)}" name="{esc(name)}">{options}</select>'
    )


def form(
    action: str, body: object, csrf: str | None, method: str = "post", **attrs: object
) -> Html:
    """A form; a POST form carries the CSRF token."""
    token = hidden("csrf", csrf) if method == "post" and csrf else Html("")
    return tag("form", Html(token + esc(body)), action=action, method=method, **attrs)


def button(text: str, **attrs: object) -> Html:
    """A submit button."""
    return tag("button", text, type="submit", **attrs)


def when(at: float | None) -> str:
    """A timestamp as UTC text (or a dash)."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def page(
    *,
    title: str,
    body: object,
    base: str,
    actor: str,
    role: str,
    csrf: str,
    live: bool = False,
    refresh: int | None = None,
) -> Html:
    """The whole document: header, navigation, ``body`` and the logout form."""
    nav = join(
        tag("li", link(base + path, text))
        for path, text in (
            ("/", "Overview"),
            ("/rollout", "Rollout"),
            ("/tenants", "Tenants"),
            ("/signals", "Signals"),
            ("/audit", "Audit log"),
        )
    )
    logout = form(base + "/logout", button("Log out"), csrf, class_="logout")
    script = (
        Html(f'<script src="{esc(base)}/static/admin.js" defer></script>') if live else Html("")
    )
    if refresh is not None:  # pages too heavy to poll for JSON reload themselves instead
        script = Html(f'<meta http-equiv="refresh" content="{int(refresh)}">') + script
    return Html(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)} - cohortroute admin</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{esc(base)}/static/admin.css">{script}</head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><p class="brand">cohortroute admin</p><nav aria-label="Main"><ul>{nav}</ul></nav>'
        f'<p class="who">{esc(actor)} ({esc(role)})</p>{logout}</header>'
        f'<main id="main" tabindex="-1"><h1>{esc(title)}</h1>{esc(body)}</main></body></html>'
    )


def bare_page(title: str, body: object, base: str) -> Html:
    """A document without navigation (the login page and errors before login)."""
    return Html(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<title>{esc(title)} - cohortroute admin</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{esc(base)}/static/admin.css"></head><body>'
        f'<main id="main"><h1>{esc(title)}</h1>{esc(body)}</main></body></html>'
    )

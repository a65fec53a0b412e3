"""Support tickets as a guard signal: open one from Python, the CLI or a help desk's webhook.

A ticket names a tenant; it is attributed to the version the tenant was on when it was opened
(from the signal rows of that minute, else from the decision the store gives now) and kept in
the signal sink, deduplicated on ``(source, external_id)`` since help desks deliver at least
once. The guard counts tickets per candidate tenant against the tenant's own ticket rate.

    from cohortroute import tickets
    tickets.open_ticket(store, "acme", text="checkout fails", severity="high")

The webhook app for Zendesk, Help Scout, Intercom and a generic JSON event is
:class:`cohortroute.tickets.webhook.TicketWebhook`.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter

from .._clock import SYSTEM, Clock
from ..errors import ValidationError, quoted
from ..explain import decide_for
from ..policy import check_tenant_name
from ..signals.model import SEVERITIES, SignalSink, Ticket
from ..store.base import Store

log = logging.getLogger(__name__)


MAX_TEXT = 2000
"""Characters of a ticket's text that are kept (the help desk has the rest)."""

__all__ = ["SEVERITIES", "Ticket", "attribute", "known_tenant", "open_ticket"]


def check_severity(severity: str) -> str:
    """``severity`` lower-cased if it is one of :data:`SEVERITIES`, else ValidationError."""
    value = str(severity).strip().lower()
    if value not in SEVERITIES:
        raise ValidationError(
            f"unknown severity {quoted(severity, 40)}: use one of {', '.join(SEVERITIES)}"
        )
    return value


def known_tenant(store: Store, sink: SignalSink, tenant: str) -> bool:
    """Whether the store has seen ``tenant``: it has a record (registered by a router, imported,
    pinned, tagged) or requests counted in the signal rows kept. A ticket for a name it has
    never seen is most likely a typo, and would still raise every tenant's ticket baseline."""
    if not store.tenant(tenant).is_empty():
        return True
    return any(row.requests for row in sink.rows(0, tenants=[tenant]))


def stored_ticket(sink: SignalSink, source: str, external_id: str) -> Ticket | None:
    """The ticket recorded under ``(source, external_id)``, None when there is none (or it was
    pruned). Reads the kept tickets: for a duplicate delivery, not for every request."""
    for ticket in sink.tickets(0):
        if ticket.source == source and ticket.external_id == external_id:
            return ticket
    return None


def attribute(store: Store, sink: SignalSink, tenant: str, at: float) -> str:
    """The version ``tenant`` was on at ``at``: the one that served most of its requests in that
    minute, else the version the store decides for it now (a tenant moved back since is
    attributed to where it is now only when no request of that minute was recorded)."""
    minute = int(at // 60)
    served: Counter[str] = Counter()
    for row in sink.rows(minute, minute + 1, tenants=[tenant]):
        served[row.version] += row.requests
    if served:
        return served.most_common(1)[0][0]
    return decide_for(store.policy(), store.tenant(tenant), at).version


def open_ticket(
    store: Store,
    tenant: str,
    text: str = "",
    *,
    severity: str = "normal",
    external_id: str | None = None,
    source: str = "python",
    at: float | None = None,
    sink: SignalSink | None = None,
    clock: Clock = SYSTEM,
) -> tuple[Ticket, bool]:
    """Record a support ticket for ``tenant``; returns the ticket and whether it was new.

    ``external_id`` is the help desk's id (a random one when not given); the same
    ``(source, external_id)`` twice is recorded once, and then the ticket returned is the one
    recorded first (its tenant, severity, time and version), not this attempt. ``at`` is when
    it was opened (now by default). ``sink`` defaults to the store's signal sink, opened and
    closed for this call (pass one to record many tickets over one connection).
    """
    name = check_tenant_name(tenant)
    level = check_severity(severity)
    when = clock.time() if at is None else float(at)
    ident = external_id if external_id is not None else secrets.token_hex(8)
    if not ident or len(ident) > 200 or not ident.isprintable():
        raise ValidationError("a ticket id is 1-200 printable characters")
    if not source or len(source) > 40 or not source.isprintable():
        # a control character (the Redis sink's \x1f separator) would not read back
        raise ValidationError(
            f"a ticket source is 1-40 printable characters, like zendesk, not {quoted(source, 50)}"
        )
    opened = sink is None
    if sink is None:
        from ..signals import open_sink

        sink = open_sink(store)
    try:
        version = attribute(store, sink, name, when)
        ticket = Ticket(name, source, ident, level, when, version, text[:MAX_TEXT])
        new = sink.add_ticket(ticket)
        if not new:
            ticket = stored_ticket(sink, source, ident) or ticket
    finally:
        if opened:
            sink.close()  # opened for this ticket only
    log.info("ticket %s/%s for %s on %s (new: %s)", source, ident, name, version, new)
    return ticket, new

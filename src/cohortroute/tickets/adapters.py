"""Help desks' webhook deliveries into ticket events: signatures, replay windows, tenants.

Each adapter checks the delivery's signature with :func:`hmac.compare_digest` against the
secret the help desk signs with, refuses a delivery outside the replay window, and finds the
tenant and the help desk's ticket id:

* **generic** -- ``{"tenant", "source", "external_id", "severity", "ts"}``, signed with
  ``X-Cohortroute-Signature: sha256=HEX`` = HMAC-SHA256 of ``TIMESTAMP + "." + BODY`` and
  ``X-Cohortroute-Timestamp: TIMESTAMP`` (Unix seconds);
* **zendesk** -- ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of ``TIMESTAMP + BODY``
  with ``X-Zendesk-Webhook-Signature-Timestamp``; the tenant is the organisation's
  ``external_id``, else its domain (``organization.domain_names``) through the mapping;
* **helpscout** -- ``X-HelpScout-Signature`` = base64 HMAC-SHA1 of the body; the tenant is the
  customer's e-mail domain through the mapping;
* **intercom** -- ``X-Hub-Signature: sha1=HEX`` = HMAC-SHA1 of the body; the tenant is the
  company id, through the mapping when it is not a tenant name itself.

Times are Unix seconds or ISO 8601; an ISO time without an offset is UTC. Help Scout and
Intercom sign no delivery time, so their window applies to the event's own
creation time (``event_window``); exact replays are stopped by deduplication.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ValidationError
from ..policy import check_tenant_name

log = logging.getLogger(__name__)

Headers = Mapping[str, str]
"""Request headers, names lower-cased."""

TenantMap = Mapping[str, str] | Callable[[str], str | None]
"""A domain, e-mail domain or company id -> tenant; a mapping or a function."""


class Refused(Exception):
    """A delivery that is not accepted: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TicketEvent:
    """What a delivery says: a ticket for a tenant (``tenant`` None when it maps to none)."""

    tenant: str | None
    source: str
    external_id: str
    severity: str = "normal"
    at: float | None = None
    text: str = ""


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the adapters see it."""

    headers: Headers
    body: bytes
    secret: bytes
    now: float
    window: float
    event_window: float
    mapping: TenantMap | None = None


def _mapped(mapping: TenantMap | None, key: str) -> str | None:
    if mapping is None or not key:
        return None
    found = mapping(key) if callable(mapping) else mapping.get(key.lower())
    return found


def _tenant(candidate: str | None) -> str | None:
    if not candidate:
        return None
    try:
        return check_tenant_name(candidate)
    except ValidationError:
        return None


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body is not a JSON object")
    return data


def _check(expected: bytes | str, given: str | None) -> None:
    if not given or not hmac.compare_digest(
        expected if isinstance(expected, bytes) else expected.encode(), given.strip().encode()
    ):
        raise Refused(401, "bad or missing signature: check the webhook's secret")


def _fresh(stamp: float, now: float, window: float, what: str) -> None:
    if abs(now - stamp) > window:
        raise Refused(401, f"{what} is outside the replay window of {window:g} s")


def _number(text: str | None, what: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "nan" would pass any window check
        raise Refused(401, f"missing or malformed {what}: send Unix seconds")
    return value


def _time(value: Any) -> float | None:
    """A Unix time from seconds or an ISO 8601 string (``...Z`` included); a string without a
    UTC offset is UTC, never the server's local time (help desks send UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            return math.inf
        return None if math.isnan(number) else number
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None


def _ident(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text or len(text) > 200 or not text.isprintable():
        raise Refused(400, "the event has no usable ticket id")
    return text


def generic(d: Delivery) -> TicketEvent:
    """``{"tenant", "source", "external_id", "severity", "ts"}``, signed (see module doc)."""
    stamp = d.headers.get("x-cohortroute-timestamp")
    _fresh(_number(stamp, "X-Cohortroute-Timestamp"), d.now, d.window, "the timestamp")
    mac = hmac.new(d.secret, f"{stamp}.".encode() + d.body, hashlib.sha256).hexdigest()
    _check(f"sha256={mac}", d.headers.get("x-cohortroute-signature"))
    data = _json(d.body)
    source = str(data.get("source") or "generic")
    return TicketEvent(
        _tenant(data.get("tenant")),
        source[:40],
        _ident(data.get("external_id")),
        str(data.get("severity") or "normal"),
        _time(data.get("ts")),
        str(data.get("text") or ""),
    )


def zendesk(d: Delivery) -> TicketEvent:
    """A Zendesk webhook: ``{"ticket": {...}, "organization": {...}}`` from a trigger."""
    stamp = d.headers.get("x-zendesk-webhook-signature-timestamp", "")
    when = _time(stamp)
    if when is None:
        raise Refused(401, "missing or malformed X-Zendesk-Webhook-Signature-Timestamp")
    _fresh(when, d.now, d.window, "the signature timestamp")
    mac = hmac.new(d.secret, stamp.encode() + d.body, hashlib.sha256).digest()
    _check(base64.b64encode(mac), d.headers.get("x-zendesk-webhook-signature"))
    data = _json(d.body)
    found = data.get("ticket")
    ticket: dict[str, Any] = found if isinstance(found, dict) else data
    org = data.get("organization") or ticket.get("organization") or {}
    if not isinstance(org, dict):
        org = {}
    tenant = _tenant(org.get("external_id"))
    domains = org.get("domain_names") or org.get("domain") or []
    if not isinstance(domains, list):
        domains = [domains] if isinstance(domains, str) else []
    for domain in domains:
        tenant = tenant or _tenant(_mapped(d.mapping, str(domain)))
    return TicketEvent(
        tenant,
        "zendesk",
        _ident(ticket.get("id")),
        str(ticket.get("priority") or "normal"),
        _time(ticket.get("created_at")),
        str(ticket.get("subject") or ticket.get("title") or ""),
    )


def helpscout(d: Delivery) -> TicketEvent:
    """A Help Scout conversation event; the tenant is the customer's e-mail domain, mapped."""
    mac = hmac.new(d.secret, d.body, hashlib.sha1).digest()
    _check(base64.b64encode(mac), d.headers.get("x-helpscout-signature"))
    data = _json(d.body)
    when = _time(data.get("createdAt"))
    if when is not None:
        _fresh(when, d.now, d.event_window, "the conversation's createdAt")
    customer = data.get("primaryCustomer") or data.get("customer") or {}
    email = str(customer.get("email") or "") if isinstance(customer, dict) else ""
    domain = email.rpartition("@")[2].lower()
    return TicketEvent(
        _tenant(_mapped(d.mapping, domain)),
        "helpscout",
        _ident(data.get("id")),
        "normal",
        when,
        str(data.get("subject") or ""),
    )


def intercom(d: Delivery) -> TicketEvent:
    """An Intercom notification; the tenant is the first ``company_id`` in its item."""
    mac = hmac.new(d.secret, d.body, hashlib.sha1).hexdigest()
    _check(f"sha1={mac}", d.headers.get("x-hub-signature"))
    data = _json(d.body)
    when = _time(data.get("created_at"))
    if when is not None:
        _fresh(when, d.now, d.event_window, "the notification's created_at")
    wrapper = data.get("data")
    item = (wrapper.get("item") if isinstance(wrapper, dict) else None) or {}
    company = _find(item, "company_id")
    tenant = _tenant(company) if company else None
    if company and _mapped(d.mapping, company):
        tenant = _tenant(_mapped(d.mapping, company))
    priority = item.get("priority") if isinstance(item, dict) else None
    return TicketEvent(
        tenant,
        "intercom",
        _ident(item.get("id") if isinstance(item, dict) else None),
        "high" if priority == "priority" else "normal",
        _time(item.get("created_at")) if isinstance(item, dict) else when,
        "",
    )


def _find(data: Any, key: str, depth: int = 0) -> str | None:
    """The first value of ``key`` anywhere in nested JSON (bounded depth)."""
    if depth > 8:
        return None
    if isinstance(data, dict):
        if data.get(key) not in (None, ""):
            return str(data[key])
        items: list[Any] = list(data.values())
    elif isinstance(data, list):
        items = data
    else:
        return None
    for value in items:
        found = _find(value, key, depth + 1)
        if found is not None:
            return found
    return None


ADAPTERS: dict[str, Callable[[Delivery], TicketEvent]] = {
    "generic": generic,
    "zendesk": zendesk,
    "helpscout": helpscout,
    "intercom": intercom,
}
"""Path segment -> adapter."""

__all__ = ["ADAPTERS", "Delivery", "Refused", "TicketEvent"]

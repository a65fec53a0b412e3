"""The webhook app help desks deliver tickets to: WSGI and ASGI, one path per source.

``POST .../generic``, ``.../zendesk``, ``.../helpscout``, ``.../intercom`` (the last path segment
names the source, so the app may be mounted under any prefix). A source without a configured
secret answers 404: nothing is accepted unsigned. Answers: 200 with ``{"ok": true, "new":
...}`` (``new`` false for a delivery already recorded), 202 when the event names no known
tenant, 400 for a malformed body (an unknown severity, a ticket time older than
``event_window``), 401 for a bad signature or a delivery outside the replay
window, 405 for anything but POST, 413 for a body over :data:`MAX_BODY`, 503 when the store
fails (help desks deliver again later).

**Mount it on its own host or an internal path, never behind the cohort router**: a request
that reaches it through a tenant's Host could be made by that tenant's users. ``hosts=`` makes
the app itself refuse (404) any other Host.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

from .._clock import SYSTEM, Clock
from .._types import Receive, Scope, Send, StartResponse, WSGIEnvironment
from ..errors import StoreError, ValidationError
from ..signals.model import SignalSink
from ..store.base import Store
from . import check_severity, open_ticket
from .adapters import ADAPTERS, Delivery, Refused, TenantMap

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""The largest delivery accepted, in bytes."""

_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class TicketWebhook:
    """A WSGI app (and, as :attr:`asgi`, an ASGI app) recording help desks' tickets.

    :param secrets: source -> signing secret (``generic``, ``zendesk``, ``helpscout``,
        ``intercom``); sources left out are refused.
    :param mappings: source -> domain or company id -> tenant (a mapping or a function).
    :param window: seconds a signed delivery timestamp may differ from now.
    :param event_window: the same for sources that sign no time (Help Scout, Intercom), applied
        to the event's own creation time.
    :param hosts: when given, the only Host values served (others get 404).
    """

    def __init__(
        self,
        store: Store,
        secrets: Mapping[str, str | bytes],
        *,
        sink: SignalSink | None = None,
        mappings: Mapping[str, TenantMap] | None = None,
        window: float = 300.0,
        event_window: float = 86400.0,
        hosts: Collection[str] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        unknown = set(secrets) - set(ADAPTERS)
        if unknown:
            raise ValidationError(
                f"unknown ticket source(s) {sorted(unknown)}: use {', '.join(ADAPTERS)}"
            )
        self.store = store
        self._owns_sink = sink is None
        if sink is None:
            from ..signals import open_sink

            sink = open_sink(store)
        self.sink = sink
        self.secrets = {k: v.encode() if isinstance(v, str) else v for k, v in secrets.items()}
        self.mappings = dict(mappings or {})
        self.window = window
        self.event_window = event_window
        self.hosts = None if hosts is None else {h.lower() for h in hosts}
        self.clock = clock

    def close(self) -> None:
        """Close the signal sink this webhook opened (one given to it stays the caller's)."""
        if self._owns_sink:
            self.sink.close()

    def handle(
        self,
        method: str,
        path: str,
        host: str,
        headers: dict[str, str],
        body: bytes,
        *,
        too_large: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """Sans-IO: one request in, ``(status, JSON answer)`` out."""
        if self.hosts is not None and host.lower() not in self.hosts:
            return 404, {"ok": False, "error": "not found"}
        source = path.rstrip("/").rpartition("/")[2]
        secret = self.secrets.get(source)
        if secret is None:
            return 404, {"ok": False, "error": f"no ticket source {source!r} is configured"}
        if method != "POST":
            return 405, {"ok": False, "error": "POST the event"}
        if too_large or len(body) > MAX_BODY:
            return 413, {"ok": False, "error": f"the body is over {MAX_BODY} bytes"}
        now = self.clock.time()
        delivery = Delivery(
            headers, body, secret, now, self.window, self.event_window, self.mappings.get(source)
        )
        try:
            event = ADAPTERS[source](delivery)
            if event.tenant is None:
                log.info("ticket %s/%s names no known tenant", source, event.external_id)
                return 202, {"ok": True, "new": False, "tenant": None}
            severity = check_severity(event.severity)  # "critical": 400, naming the valid ones
            at = _opened_at(event.at, now, self.window, self.event_window)
            ticket, new = open_ticket(
                self.store,
                event.tenant,
                event.text,
                severity=severity,
                external_id=event.external_id,
                source=event.source,
                at=at,
                sink=self.sink,
            )
        except Refused as exc:
            log.warning("ticket webhook %s refused (%d): %s", source, exc.status, exc)
            return exc.status, {"ok": False, "error": str(exc)}
        except ValidationError as exc:
            return 400, {"ok": False, "error": str(exc)}
        except StoreError as exc:  # a 5xx: help desks deliver it again later
            log.warning("ticket webhook %s: the store failed: %s", source, exc)
            return 503, {"ok": False, "error": f"the store failed ({exc}); retry later"}
        return 200, {"ok": True, "new": new, "tenant": ticket.tenant, "version": ticket.version}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(min(length, MAX_BODY + 1)) if length > 0 else b""
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        status, answer = self.handle(
            str(environ.get("REQUEST_METHOD", "GET")),
            str(environ.get("PATH_INFO", "")),
            host.rsplit(":", 1)[0] if not host.endswith("]") else host,
            headers,
            body,
        )
        data = json.dumps(answer).encode()
        start_response(
            f"{status} {_REASONS.get(status, '')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: the same answers as the WSGI one."""
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY:
                chunks.append(chunk)
            more = bool(message.get("more_body", False))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        status, answer = self.handle(
            scope["method"],
            scope.get("path", ""),
            host.rsplit(":", 1)[0] if not host.endswith("]") else host,
            headers,
            b"".join(chunks),
            too_large=size > MAX_BODY,
        )
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _opened_at(at: float | None, now: float, window: float, event_window: float) -> float:
    """When the ticket was opened: the event's time, now when it gives none or one in the future
    (past ``window``: a clock ahead), and a ValidationError (400) when it is older than
    ``event_window``: a ``ts`` of 0 or in milliseconds is a sender's bug, not a 1970 ticket."""
    if at is None or at > now + window:
        return now
    if at < now - event_window:
        raise ValidationError(
            f"the ticket's time {at:.0f} is more than event_window={event_window:g} s before now: "
            "send when it was opened, as Unix seconds or ISO 8601 (UTC unless an offset is given)"
        )
    return at

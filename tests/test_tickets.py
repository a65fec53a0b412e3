"""Support tickets: the Python call, the CLI, and the webhook with each help desk's signature."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
from collections.abc import Mapping
from typing import Any

import pytest

from cohortroute.errors import ValidationError
from cohortroute.tickets import open_ticket
from cohortroute.tickets.webhook import MAX_BODY, TicketWebhook

from .cli_inproc import cli
from .guard_world import World

SECRET = "s3cret"


@pytest.fixture
def world() -> World:
    return World(tenants=8, history_minutes=20)


def _app(world: World, **options: Any) -> TicketWebhook:
    secrets = {name: SECRET for name in ("generic", "zendesk", "helpscout", "intercom")}
    return TicketWebhook(world.store, secrets, sink=world.sink, clock=world.clock, **options)


def _post(
    app: TicketWebhook, path: str, body: bytes, headers: Mapping[str, str], method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "HTTP_HOST": "hooks.internal:8080",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    }
    seen: list[str] = []
    chunks = app(environ, lambda status, headers, exc_info=None: seen.append(status))  # type: ignore[arg-type]
    return int(seen[0].split()[0]), json.loads(b"".join(chunks))


def _generic(
    world: World, event: dict[str, Any], secret: str = SECRET, skew: float = 0
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    stamp = str(int(world.clock.time() + skew))
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Cohortroute-Timestamp": stamp, "X-Cohortroute-Signature": f"sha256={mac}"}


def test_open_ticket_attributes_the_version_and_deduplicates(world: World) -> None:
    reached = world.start(50)
    ticket, new = open_ticket(
        world.store,
        reached[0],
        "checkout fails",
        severity="HIGH",
        external_id="Z-1",
        sink=world.sink,
        clock=world.clock,
    )
    assert new and ticket.version == "v2" and ticket.severity == "high"
    _, new = open_ticket(world.store, reached[0], external_id="Z-1", sink=world.sink)
    assert not new
    assert len(world.sink.tickets(0)) == 1
    with pytest.raises(ValidationError, match="severity"):
        open_ticket(world.store, reached[0], severity="meh", sink=world.sink)
    with pytest.raises(ValidationError, match="DNS label"):
        open_ticket(world.store, "not a tenant", sink=world.sink)


def test_a_ticket_is_attributed_to_the_version_that_served_the_tenant_then(world: World) -> None:
    reached = world.start(50)
    world.minutes(2)
    opened_at = world.clock.time() - 90  # a minute in which the tenant was served v2
    world.controller.rollback(reached[0])
    ticket, _ = open_ticket(world.store, reached[0], at=opened_at, sink=world.sink)
    assert ticket.version == "v2"
    now, _ = open_ticket(world.store, reached[0], sink=world.sink, clock=world.clock)
    assert now.version == "v1"


def test_generic_events_are_signed_fresh_and_deduplicated(world: World) -> None:
    app = _app(world)
    event = {"tenant": "t1", "source": "freshdesk", "external_id": "F-9", "severity": "urgent"}
    status, answer = _post(app, "/tickets/generic", *_generic(world, event))
    assert status == 200 and answer["new"] and answer["tenant"] == "t1"
    status, answer = _post(app, "/tickets/generic", *_generic(world, event))
    assert status == 200 and not answer["new"]  # at-least-once delivery
    assert [(t.source, t.severity) for t in world.sink.tickets(0)] == [("freshdesk", "urgent")]
    assert _post(app, "/tickets/generic", *_generic(world, event, secret="wrong"))[0] == 401
    assert _post(app, "/tickets/generic", *_generic(world, event, skew=-3600))[0] == 401
    body, headers = _generic(world, event)
    assert _post(app, "/tickets/generic", body + b" ", headers)[0] == 401
    assert _post(app, "/tickets/generic", body, {})[0] == 401
    unknown = {**event, "tenant": "Not A Tenant", "external_id": "F-10"}
    assert _post(app, "/tickets/generic", *_generic(world, unknown))[0] == 202
    bad = _generic(world, {"tenant": "t1"})
    assert _post(app, "/tickets/generic", *bad)[0] == 400


def test_zendesk_signature_and_organisation(world: World) -> None:
    app = _app(world, mappings={"zendesk": {"t3.example.com": "t3"}})
    stamp = "2026-12-01T12:00:00Z"
    world.clock.advance(0)
    import datetime

    now = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    world.clock.advance(max(0.0, now - world.clock.time()))
    app = _app(world, mappings={"zendesk": {"t3.example.com": "t3"}})

    def send(payload: dict[str, Any], secret: str = SECRET) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload).encode()
        mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        headers = {
            "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
        return _post(app, "/zendesk", body, headers)

    by_id = {"ticket": {"id": 7, "priority": "high"}, "organization": {"external_id": "t2"}}
    assert send(by_id)[1]["tenant"] == "t2"
    by_domain = {"ticket": {"id": 8}, "organization": {"domain_names": ["t3.example.com"]}}
    assert send(by_domain)[1]["tenant"] == "t3"
    assert send({"ticket": {"id": 9}}, secret="nope")[0] == 401
    assert {t.external_id: t.severity for t in world.sink.tickets(0)} == {
        "7": "high",
        "8": "normal",
    }


def test_help_scout_maps_the_customer_email_domain(world: World) -> None:
    app = _app(world, mappings={"helpscout": {"acme-corp.com": "t4"}})
    payload = {"id": 123, "customer": {"email": "ann@acme-corp.com"}, "subject": "slow"}
    body = json.dumps(payload).encode()
    mac = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha1).digest()).decode()
    status, answer = _post(app, "/helpscout", body, {"X-HelpScout-Signature": mac})
    assert status == 200 and answer["tenant"] == "t4"
    assert _post(app, "/helpscout", body, {"X-HelpScout-Signature": "x" + mac})[0] == 401
    other = json.dumps({"id": 124, "customer": {"email": "bob@elsewhere.org"}}).encode()
    mac = base64.b64encode(hmac.new(SECRET.encode(), other, hashlib.sha1).digest()).decode()
    assert _post(app, "/helpscout", other, {"X-HelpScout-Signature": mac})[0] == 202


def test_intercom_company_id_and_asgi(world: World) -> None:
    app = _app(world, mappings={"intercom": {"c-991": "t5"}})
    payload = {
        "type": "notification_event",
        "created_at": int(world.clock.time()),
        "data": {
            "item": {
                "id": "conv-1",
                "user": {"companies": {"companies": [{"company_id": "c-991"}]}},
            }
        },
    }
    body = json.dumps(payload).encode()
    mac = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/hooks/intercom",
        "headers": [(b"host", b"hooks.internal"), (b"x-hub-signature", f"sha1={mac}".encode())],
    }
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app.asgi(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["tenant"] == "t5"
    stale = {**payload, "created_at": int(world.clock.time()) - 10 * 86400}
    body = json.dumps(stale).encode()
    mac = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert _post(app, "/intercom", body, {"X-Hub-Signature": f"sha1={mac}"})[0] == 401


def test_the_webhook_refuses_what_it_was_not_set_up_for(world: World) -> None:
    app = TicketWebhook(
        world.store,
        {"generic": SECRET},
        sink=world.sink,
        clock=world.clock,
        hosts=["hooks.internal"],
    )
    assert _post(app, "/zendesk", b"{}", {})[0] == 404  # no secret: never accepted unsigned
    assert _post(app, "/generic", b"", {}, method="GET")[0] == 405
    assert _post(app, "/generic", b"x" * (MAX_BODY + 1), {})[0] == 413
    elsewhere = TicketWebhook(world.store, {"generic": SECRET}, sink=world.sink, hosts=["x.y"])
    assert _post(elsewhere, "/generic", b"{}", {})[0] == 404  # a tenant's Host, say
    with pytest.raises(ValidationError, match="unknown ticket source"):
        TicketWebhook(world.store, {"jira": SECRET}, sink=world.sink)


def test_cli_ticket(tmp_path: Any) -> None:
    from cohortroute.store import open_store

    url = f"sqlite:///{tmp_path}/t.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    store.register_tenants(["acme"])
    store.close()
    first = cli("ticket", "acme", "--severity", "high", "--id", "Z-1", "it broke", store=url)
    assert first.code == 0 and "recorded for acme on v1" in first.out
    again = cli("ticket", "acme", "--id", "Z-1", "again", "--json", store=url)
    assert again.code == 0 and json.loads(again.out)["new"] is False
    bad = cli("ticket", "acme", "--severity", "meh", "x", store=url)
    assert bad.code == 2
    assert cli("ticket", "Not_A_Tenant", "x", store=url).code == 2


def test_a_sink_opened_for_a_ticket_or_by_a_webhook_is_closed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``open_ticket`` without a sink opens the store's and closes it when done; a webhook
    closes the sink it opened on ``close()`` and leaves one it was given open."""
    import cohortroute.signals as signals
    from cohortroute.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/t.db")
    store.register_versions(["v1", "v2"], "v1", actor="test")
    opened: list[Any] = []
    real = signals.open_sink

    def tracking(*args: Any, **kwargs: Any) -> Any:
        sink = real(*args, **kwargs)
        closed = sink.close

        def close() -> None:
            opened.remove(sink)
            closed()

        sink.close = close  # type: ignore[method-assign]
        opened.append(sink)
        return sink

    monkeypatch.setattr(signals, "open_sink", tracking)
    ticket, new = open_ticket(store, "acme", "it broke")
    assert new and ticket.version == "v1"
    assert opened == []  # opened for the ticket, closed after it
    webhook = TicketWebhook(store, {"generic": SECRET})
    assert len(opened) == 1
    webhook.close()
    assert opened == []
    given = signals.open_sink(store)
    TicketWebhook(store, {"generic": SECRET}, sink=given).close()
    assert opened == [given]  # still open: it is the caller's
    given.close()
    store.close()

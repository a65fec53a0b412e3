"""Malformed webhook deliveries get a 4xx answer naming the problem, never a 500 (the server's
traceback page) and never a ticket at a time that is not a time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from typing import Any

import pytest

from cohortroute.tickets.webhook import TicketWebhook

from .guard_world import World
from .test_tickets import SECRET, _app, _post


@pytest.fixture
def world() -> World:
    return World(tenants=4, history_minutes=20)


def _signed_generic(world: World, body: bytes, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp if stamp is not None else str(int(world.clock.time()))
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Cohortroute-Timestamp": stamp, "X-Cohortroute-Signature": f"sha256={mac}"}


def _zendesk(app: TicketWebhook, world: World, body: bytes) -> tuple[int, dict[str, Any]]:
    import datetime

    stamp = datetime.datetime.fromtimestamp(world.clock.time(), datetime.timezone.utc)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = hmac.new(SECRET.encode(), text.encode() + body, hashlib.sha256).digest()
    headers = {
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": text,
    }
    return _post(app, "/zendesk", body, headers)


def _intercom(app: TicketWebhook, body: bytes) -> tuple[int, dict[str, Any]]:
    mac = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    return _post(app, "/intercom", body, {"X-Hub-Signature": f"sha1={mac}"})


@pytest.mark.parametrize(
    "ts",
    [b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 400, b"1e999"],
)
def test_a_ticket_time_that_is_not_a_finite_number_is_no_500(world: World, ts: bytes) -> None:
    app = _app(world)
    body = b'{"tenant": "t1", "external_id": "N-1", "ts": ' + ts + b"}"
    status, answer = _post(app, "/generic", body, _signed_generic(world, body))
    assert status in (200, 400), answer
    for ticket in world.sink.tickets(0):
        assert math.isfinite(ticket.at) and abs(ticket.at - world.clock.time()) < 1


def test_a_delivery_timestamp_of_nan_is_outside_the_replay_window(world: World) -> None:
    app = _app(world)
    body = b'{"tenant": "t1", "external_id": "N-2"}'
    for stamp in ("nan", "NaN", "inf"):
        status, answer = _post(app, "/generic", body, _signed_generic(world, body, stamp))
        assert status == 401, (stamp, answer)
    assert world.sink.tickets(0) == []


def test_zendesk_fields_of_the_wrong_type_are_no_500(world: World) -> None:
    app = _app(world, mappings={"zendesk": {"t3.example.com": "t3"}})
    odd_domains = b'{"ticket": {"id": 1}, "organization": {"domain_names": 5}}'
    assert _zendesk(app, world, odd_domains)[0] == 202
    nan_time = b'{"ticket": {"id": 2, "created_at": NaN}, "organization": {"external_id": "t2"}}'
    status, answer = _zendesk(app, world, nan_time)
    assert status == 200 and answer["tenant"] == "t2"
    assert [math.isfinite(t.at) for t in world.sink.tickets(0)] == [True]


def test_intercom_fields_of_the_wrong_type_are_no_500(world: World) -> None:
    app = _app(world)
    for body in (b'{"data": "x"}', b'{"data": [1]}', b'{"data": {"item": "x"}}'):
        status, answer = _intercom(app, body)
        assert status == 400 and "ticket id" in answer["error"], (body, answer)
    nan_time = b'{"created_at": NaN, "data": {"item": {"id": 1, "company_id": "t1"}}}'
    assert _intercom(app, nan_time)[0] == 200
    nan_item = b'{"data": {"item": {"id": 2, "company_id": "t1", "created_at": NaN}}}'
    assert _intercom(app, nan_item)[0] == 200
    assert all(math.isfinite(t.at) for t in world.sink.tickets(0))


def test_a_ticket_source_with_control_characters_is_refused(world: World) -> None:
    # Redis keeps a ticket under "source\x1fexternal_id": a source holding \x1f read back as
    # another source and id, and its duplicate was not found
    from cohortroute.errors import ValidationError
    from cohortroute.tickets import open_ticket

    for source in ("a\x1fb", "line\nbreak", ""):
        with pytest.raises(ValidationError, match="source"):
            open_ticket(world.store, "t1", "x", source=source, sink=world.sink)
    app = _app(world)
    body = b'{"tenant": "t1", "external_id": "S-1", "source": "desk\\u001fX"}'
    status, answer = _post(app, "/generic", body, _signed_generic(world, body))
    assert status == 400 and "source" in answer["error"]
    assert world.sink.tickets(0) == []
    _, new = open_ticket(world.store, "t1", "x", source="freshdesk", sink=world.sink)
    assert new and [t.source for t in world.sink.tickets(0)] == ["freshdesk"]


class _DownSink:
    """A sink whose store is unreachable."""

    def rows(self, *args: Any, **kwargs: Any) -> Any:
        from cohortroute.errors import StoreUnavailableError

        raise StoreUnavailableError("cannot read signal rows in Redis at 127.0.0.1:6379: refused")

    add_ticket = tickets = rows


def test_a_store_that_is_down_answers_503_so_the_help_desk_retries(world: World) -> None:
    app = TicketWebhook(world.store, {"generic": SECRET}, sink=_DownSink(), clock=world.clock)  # type: ignore[arg-type]
    body = b'{"tenant": "t1", "external_id": "D-1"}'
    status, answer = _post(app, "/generic", body, _signed_generic(world, body))
    assert status == 503, answer
    assert not answer["ok"] and "retry" in answer["error"]

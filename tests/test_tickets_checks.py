"""What the ticket webhook and ``cohortroute ticket`` refuse or read differently since the trial:
unknown severities, ticket times long past, ISO times without an offset, unseen tenants, and a
duplicate id shown as the ticket recorded first."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pytest

from cohortroute.store import open_store

from .cli_inproc import cli
from .guard_world import World
from .test_tickets import _app, _generic, _post


@pytest.fixture
def world() -> World:
    return World(tenants=8, history_minutes=20)


def test_an_unknown_severity_is_a_400_naming_the_valid_ones(world: World) -> None:
    app = _app(world)
    event = {"tenant": "t1", "external_id": "F-1", "severity": "critical"}
    status, answer = _post(app, "/tickets/generic", *_generic(world, event))
    assert status == 400
    assert "critical" in answer["error"] and "low, normal, high, urgent" in answer["error"]
    assert world.sink.tickets(0) == []
    urgent = {**event, "severity": "Urgent"}
    assert _post(app, "/tickets/generic", *_generic(world, urgent))[0] == 200
    assert [t.severity for t in world.sink.tickets(0)] == ["urgent"]


def test_a_ticket_time_older_than_the_event_window_is_refused(world: World) -> None:
    app = _app(world, event_window=86400.0)
    now = world.clock.time()
    zero = {"tenant": "t1", "external_id": "F-2", "ts": 0}
    status, answer = _post(app, "/tickets/generic", *_generic(world, zero))
    assert status == 400 and "event_window" in answer["error"]
    assert world.sink.tickets(0) == []
    hour_ago = {"tenant": "t1", "external_id": "F-3", "ts": now - 3600}
    assert _post(app, "/tickets/generic", *_generic(world, hour_ago))[0] == 200
    future = {"tenant": "t1", "external_id": "F-4", "ts": now + 86400}  # clamped to now
    assert _post(app, "/tickets/generic", *_generic(world, future))[0] == 200
    assert sorted(t.at for t in world.sink.tickets(0)) == [now - 3600, now]


def test_an_iso_time_without_offset_is_utc_whatever_the_local_zone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        app = _app(world)
        opened = int(world.clock.time()) - 600
        naive = datetime.datetime.fromtimestamp(opened, datetime.timezone.utc).replace(tzinfo=None)
        event = {"tenant": "t1", "external_id": "F-5", "ts": naive.isoformat()}
        assert _post(app, "/tickets/generic", *_generic(world, event))[0] == 200
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [t.at for t in world.sink.tickets(0)] == [opened]


def _store(tmp_path: Any) -> str:
    url = f"sqlite:///{tmp_path}/t.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    store.register_tenants(["acme"])
    store.close()
    return url


def test_cli_refuses_a_tenant_the_store_never_saw_unless_forced(tmp_path: Any) -> None:
    url = _store(tmp_path)
    refused = cli("ticket", "nosuchtenant", "hello", store=url)
    assert refused.code == 2
    assert "never seen tenant 'nosuchtenant'" in refused.err and "--force" in refused.err
    listed = cli("ticket", "acme", "--id", "A-1", "x", "--json", store=url)
    assert json.loads(listed.out)["new"] is True
    forced = cli("ticket", "nosuchtenant", "hello", "--force", "--json", store=url)
    assert forced.code == 0 and json.loads(forced.out)["tenant"] == "nosuchtenant"


def test_cli_duplicate_id_prints_the_stored_ticket_and_says_so(tmp_path: Any) -> None:
    url = _store(tmp_path)
    first = cli(
        "ticket", "acme", "--severity", "high", "--id", "ZD-1", "it broke", "--json", store=url
    )
    stored = json.loads(first.out)
    again = cli("ticket", "acme", "--id", "ZD-1", "again", "--json", store=url)
    assert again.code == 0
    shown = json.loads(again.out)
    assert shown == {**stored, "new": False}
    assert shown["severity"] == "high"
    assert "duplicate" in again.err
    text = cli("ticket", "acme", "--id", "ZD-1", "again", store=url)
    assert "duplicate" in text.out and "high" in text.out

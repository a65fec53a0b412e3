"""The overview names the rollout's candidate in the Role column; charts label their time axis
(UTC) and the table next to each shows the last complete minute, not the one still counting."""

from __future__ import annotations

from werkzeug.test import Client

from cohortroute import AdminApp, open_store
from cohortroute.signals import open_sink
from cohortroute.signals.model import SignalRow
from cohortroute.store import Store

TOKEN = "read-token-0123456789abcdef"
NOW = 1_790_000_000.0 + 30  # 30 s into a minute
MINUTE = int(NOW // 60)


def hhmm(minute: int) -> str:
    hours, minutes = divmod(minute % 1440, 60)
    return f"{hours:02d}:{minutes:02d}"


def _client(store: Store) -> Client:
    app = AdminApp(
        store, tokens={TOKEN: "rita"}, secret=b"k" * 32, hosts=["admin.test"], clock=lambda: NOW
    )
    client = Client(app)
    client.post("/login", data={"token": TOKEN}, headers={"Host": "admin.test"})
    return client


def test_the_overview_names_the_candidate_in_the_role_column() -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2", "v3"], "v1")
    store.start_rollout("v2", 10)
    text = _client(store).get("/", headers={"Host": "admin.test"}).text
    assert "<tr><td>v1</td><td>default</td>" in text
    assert "<tr><td>v2</td><td>candidate</td>" in text
    assert "<tr><td>v3</td><td></td>" in text


def test_charts_label_time_and_show_the_last_complete_minute() -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1")
    sink = open_sink(store)
    ok = (0, 1, 0, 0, 0)
    sink.add(
        [
            SignalRow(MINUTE - 1, "acme", "v1", requests=40, status=(0, 40, 0, 0, 0)),
            SignalRow(MINUTE, "acme", "v1", requests=3, status=(0, 3, 0, 0, 0)),  # partial
            SignalRow(MINUTE - 2, "acme", "v2", requests=1, status=ok),
        ]
    )
    text = _client(store).get("/signals?minutes=10", headers={"Host": "admin.test"}).text
    complete, now, first = (hhmm(MINUTE - 1), hhmm(MINUTE), hhmm(MINUTE - 9))
    assert f"Requests per minute in the last complete minute ({complete} UTC)" in text
    assert "<tr><td>v1</td><td>40</td></tr>" in text  # not the 3 of the minute still counting
    assert "<tr><td>v2</td><td>-</td></tr>" in text  # nothing in that minute, not a stale 1
    assert f">{first} UTC</text>" in text and f">{now} now</text>" in text

"""The push listener's log during an outage: one WARNING when the connection is lost, at most one
every few minutes while the store stays down (with the count of attempts), one when it is back."""

from __future__ import annotations

import logging

import pytest

from cohortroute._clock import ManualClock
from cohortroute.store import open_store
from cohortroute.store._push import REPEAT_WARNING, PushListener


class Flaky(PushListener):
    """A listener whose sessions fail ``down`` times, then connect once and stop."""

    kind = "Test"

    def __init__(self, down: int, clock: ManualClock) -> None:
        self.store = open_store("memory://")
        super().__init__(
            self.store, name="t", url="test://x", join_timeout=1, errors=(ConnectionError,)
        )
        self._monotonic = clock.monotonic
        self.clock = clock
        self.down = down
        self.sessions = 0

    def _session(self) -> bool:
        self.sessions += 1
        self.clock.advance(1.0)  # each attempt takes a second
        if self.sessions <= self.down:
            raise ConnectionError("Connection refused")
        self._notify()  # connected: a session notifies once
        self._stopping.set()
        return True

    def _wait(self, delay: float) -> bool:
        self.clock.advance(delay)  # no real waiting
        return self._stopping.is_set()


def test_an_outage_logs_a_few_warnings_not_one_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    listener = Flaky(down=400, clock=clock)  # about 400 * 6 s: some 40 minutes down
    with caplog.at_level(logging.DEBUG, logger="cohortroute.store._push"):
        listener._run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    minutes_down = 400 * 6.0 / 60
    assert len(warnings) <= 2 + minutes_down * 60 / REPEAT_WARNING
    assert warnings[0].startswith("lost the push connection to the Test store at test://x")
    assert "still down" in warnings[1] and "failed attempts" in warnings[1]
    assert warnings[-1].startswith("the push connection to the Test store at test://x is back")
    assert "after 400 failed attempts" in warnings[-1]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 400 - (len(warnings) - 1)  # every other attempt is still in the log


def test_a_second_outage_warns_again_at_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    listener = Flaky(down=2, clock=clock)
    with caplog.at_level(logging.WARNING, logger="cohortroute.store._push"):
        listener._run()
        listener._stopping.clear()
        listener.down, listener.sessions = 3, 0
        listener._run()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0].split(",")[0] for m in messages] == [
        "lost the push connection to the Test store at test://x",
        "the push connection to the Test store at test://x is back",
        "lost the push connection to the Test store at test://x",
        "the push connection to the Test store at test://x is back",
    ]

"""Test doubles for signal tests: a sink that can fail and says when it was written."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from cohortroute.errors import StoreUnavailableError
from cohortroute.signals import SignalRow
from cohortroute.signals.sinks.memory import MemorySink


class RecordingSink(MemorySink):
    """A memory sink that fails while :attr:`down`, and records every write and prune."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.writes: list[int] = []
        self.prunes: list[int] = []
        self.attempts = 0
        self.written = threading.Event()
        self.closed = 0

    def add(self, rows: Sequence[SignalRow]) -> None:
        self.attempts += 1
        if self.down:
            raise StoreUnavailableError("the signal store is down (test)")
        super().add(rows)
        self.writes.append(len(rows))
        self.written.set()

    def prune(self, before_minute: int) -> int:
        self.prunes.append(before_minute)
        return super().prune(before_minute)

    def close(self) -> None:
        self.closed += 1

    def totals(self) -> dict[tuple[str, str], SignalRow]:
        """(tenant, version) -> its rows summed over every minute (minute set to 0)."""
        found: dict[tuple[str, str], SignalRow] = {}
        for row in self.rows(0):
            flat = replace(row, minute=0)
            key = (row.tenant, row.version)
            found[key] = flat if key not in found else found[key] + flat
        return found

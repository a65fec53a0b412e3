"""The memory sink: signals and tickets held in this process, for tests and single-process use.

One sink per :class:`~cohortroute.store.MemoryStore` object (``open_sink`` returns the same one
for the same store), so a router and a guard over one memory store see the same rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence

from ..model import SignalRow, Ticket

log = logging.getLogger(__name__)


class MemorySink:
    """Rows and tickets in dicts, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, str, str], SignalRow] = {}
        self._tickets: dict[tuple[str, str], Ticket] = {}

    def __repr__(self) -> str:
        return f"<MemorySink {len(self._rows)} rows, {len(self._tickets)} tickets>"

    def add(self, rows: Sequence[SignalRow]) -> None:
        with self._lock:
            stored = self._rows
            for row in rows:
                old = stored.get(row.key)
                stored[row.key] = row if old is None else old + row

    def rows(
        self,
        since_minute: int,
        until_minute: int | None = None,
        versions: Collection[str] | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[SignalRow]:
        version_set = None if versions is None else set(versions)
        tenant_set = None if tenants is None else set(tenants)
        with self._lock:
            found = [
                row
                for key, row in self._rows.items()
                if key[0] >= since_minute
                and (until_minute is None or key[0] < until_minute)
                and (version_set is None or row.version in version_set)
                and (tenant_set is None or row.tenant in tenant_set)
            ]
        return sorted(found, key=lambda row: row.key)

    def add_ticket(self, ticket: Ticket) -> bool:
        key = (ticket.source, ticket.external_id)
        with self._lock:
            if key in self._tickets:
                return False
            self._tickets[key] = ticket
            return True

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        with self._lock:
            found = [
                t
                for t in self._tickets.values()
                if t.at >= since and (until is None or t.at < until)
            ]
        return sorted(found, key=lambda t: (t.at, t.source, t.external_id))

    def prune(self, before_minute: int) -> int:
        with self._lock:
            old_rows = [key for key in self._rows if key[0] < before_minute]
            old_tickets = [k for k, t in self._tickets.items() if t.at < before_minute * 60.0]
            for key in old_rows:
                del self._rows[key]
            for ticket in old_tickets:
                del self._tickets[ticket]
        return len(old_rows) + len(old_tickets)

    def close(self) -> None:
        """Nothing to release: the rows live as long as the sink."""

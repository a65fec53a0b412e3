"""The SQL both SQL sinks share: tables, the commutative upsert, range reads, ticket dedupe.

SQLite and PostgreSQL both take ``INSERT ... ON CONFLICT (...) DO UPDATE SET c = t.c +
excluded.c``: an increment that commutes with every other process's, so rows from any number
of routers add up whatever the order. Only placeholders, the table qualifier and the type of a
count differ; :class:`Dialect` holds them and builds every statement once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._rows import COLUMNS, FLOAT_COLUMNS, to_row, values
from ..model import SignalRow, Ticket

log = logging.getLogger(__name__)

_KEY = ("minute", "tenant", "version")
_TICKET = ("tenant", "source", "external_id", "severity", "at", "version", "text")
#: Longest IN (...) list sent; a longer tenant filter is applied after reading.
MAX_IN = 500


@dataclass(frozen=True)
class Dialect:
    """The statements of one SQL engine, over tables named ``{where}signals`` / ``tickets``."""

    where: str  # "cohortroute_" or "schema.cohortroute_" (already quoted where needed)
    mark: str  # "?" or "%s"
    alias: bool  # INSERT INTO t AS current (PostgreSQL); SQLite qualifies by table name
    collate: str = ""  # ' COLLATE "C"' where text does not sort by code point by default

    @property
    def signals(self) -> str:
        return f"{self.where}signals"

    @property
    def tickets(self) -> str:
        return f"{self.where}tickets"

    def ddl(self) -> list[str]:
        """CREATE TABLE IF NOT EXISTS for both tables."""
        counters = ", ".join(
            f"{name} {'DOUBLE PRECISION' if i in FLOAT_COLUMNS else 'BIGINT'} NOT NULL DEFAULT 0"
            for i, name in enumerate(COLUMNS)
        )
        ticket_index = self.tickets.rpartition(".")[2] + "_at"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.signals} (minute BIGINT NOT NULL, "
            f"tenant TEXT NOT NULL, version TEXT NOT NULL, {counters}, "
            "PRIMARY KEY (minute, tenant, version))",
            f"CREATE TABLE IF NOT EXISTS {self.tickets} (source TEXT NOT NULL, "
            "external_id TEXT NOT NULL, tenant TEXT NOT NULL, severity TEXT NOT NULL, "
            "at DOUBLE PRECISION NOT NULL, version TEXT NOT NULL, text TEXT NOT NULL, "
            "PRIMARY KEY (source, external_id))",
            f"CREATE INDEX IF NOT EXISTS {ticket_index} ON {self.tickets} (at)",
        ]

    def upsert(self) -> str:
        """Add one row's counters to the stored row of its key (created at zero)."""
        names = (*_KEY, *COLUMNS)
        marks = ", ".join([self.mark] * len(names))
        current = "current" if self.alias else self.signals
        target = f"{self.signals} AS current" if self.alias else self.signals
        sets = ", ".join(f"{c} = {current}.{c} + excluded.{c}" for c in COLUMNS)
        return (
            f"INSERT INTO {target} ({', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT (minute, tenant, version) DO UPDATE SET {sets}"
        )

    def upsert_arrays(self) -> str:
        """:meth:`upsert` for a whole batch in one statement: one array per column (PostgreSQL's
        ``unnest``); the batch must hold each key once."""
        names = (*_KEY, *COLUMNS)
        counters = ("float8" if i in FLOAT_COLUMNS else "bigint" for i in range(len(COLUMNS)))
        types = ("bigint", "text", "text", *counters)
        arrays = ", ".join(f"{self.mark}::{kind}[]" for kind in types)
        sets = ", ".join(f"{c} = current.{c} + excluded.{c}" for c in COLUMNS)
        return (
            f"INSERT INTO {self.signals} AS current ({', '.join(names)}) "
            f"SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT (minute, tenant, version) DO UPDATE SET {sets}"
        )

    def select(
        self,
        since: int,
        until: int | None,
        versions: Collection[str] | None,
        tenants: Collection[str] | None,
    ) -> tuple[str, list[Any]]:
        """The rows query and its parameters (``tenants`` only when short enough)."""
        where: list[str] = [f"minute >= {self.mark}"]
        params: list[Any] = [since]
        if until is not None:
            where.append(f"minute < {self.mark}")
            params.append(until)
        for column, wanted in (("version", versions), ("tenant", tenants)):
            if wanted is not None and len(wanted) <= MAX_IN:
                if not wanted:
                    where.append("1 = 0")
                    continue
                where.append(f"{column} IN ({', '.join([self.mark] * len(wanted))})")
                params.extend(sorted(wanted))
        sql = (
            f"SELECT {', '.join((*_KEY, *COLUMNS))} FROM {self.signals} "
            f"WHERE {' AND '.join(where)} "
            f"ORDER BY minute, tenant{self.collate}, version{self.collate}"
        )
        return sql, params

    def prune(self) -> tuple[str, str]:
        """Delete rows of older minutes, and tickets opened before a time."""
        return (
            f"DELETE FROM {self.signals} WHERE minute < {self.mark}",
            f"DELETE FROM {self.tickets} WHERE at < {self.mark}",
        )

    def add_ticket(self) -> str:
        """Insert a ticket unless its (source, external_id) is known."""
        marks = ", ".join([self.mark] * len(_TICKET))
        return (
            f"INSERT INTO {self.tickets} ({', '.join(_TICKET)}) VALUES ({marks}) "
            "ON CONFLICT (source, external_id) DO NOTHING"
        )

    def select_tickets(self, until: float | None) -> str:
        bound = f" AND at < {self.mark}" if until is not None else ""
        return (
            f"SELECT {', '.join(_TICKET)} FROM {self.tickets} WHERE at >= {self.mark}{bound} "
            f"ORDER BY at, source{self.collate}, external_id{self.collate}"
        )


def parameters(rows: Sequence[SignalRow]) -> list[tuple[Any, ...]]:
    """The upsert's parameters for each row, one per key (rows of the same key summed), in key
    order (so concurrent writers lock rows in the same order)."""
    merged: dict[tuple[int, str, str], SignalRow] = {}
    for row in rows:
        old = merged.get(row.key)
        merged[row.key] = row if old is None else old + row
    return [(*key, *values(merged[key])) for key in sorted(merged)]


def columns(rows: Sequence[SignalRow]) -> list[str]:
    """:func:`parameters` as one array literal per column (``{1,2}``, ``{"a","b"}``), for
    :meth:`Dialect.upsert_arrays`: the server parses them, far faster than the driver adapts
    a list per column."""
    literals = []
    items: Iterable[str]
    for i, column in enumerate(zip(*parameters(rows), strict=True)):
        if i in (1, 2):  # tenant, version
            items = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in column)
        else:
            items = map(repr, column)
        literals.append("{" + ",".join(items) + "}")
    return literals


def decode(records: Iterable[Sequence[Any]], tenants: Collection[str] | None) -> list[SignalRow]:
    """Rows read by :meth:`Dialect.select` (applying a tenant filter too long for SQL)."""
    wanted = set(tenants) if tenants is not None and len(tenants) > MAX_IN else None
    return [
        to_row(int(r[0]), r[1], r[2], r[3:]) for r in records if wanted is None or r[1] in wanted
    ]


def ticket_parameters(ticket: Ticket) -> tuple[Any, ...]:
    return tuple(getattr(ticket, name) for name in _TICKET)


def decode_tickets(records: Iterable[Sequence[Any]]) -> list[Ticket]:
    return [Ticket(r[0], r[1], r[2], r[3], float(r[4]), r[5], r[6]) for r in records]

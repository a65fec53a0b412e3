"""The flat form of a row's counters: one list (on the request path) or one tuple of columns.

The recorder counts into plain lists of :data:`WIDTH` numbers, laid out as :data:`COLUMNS`
says, because a list item increment is the cheapest update CPython has; sinks store the same
columns. This module converts between that form and :class:`~.model.SignalRow`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .model import BUCKETS, SignalRow

log = logging.getLogger(__name__)

#: The counters of a row, in the order of the flat form.
COLUMNS = (
    "requests",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "exceptions",
    "slow",
    "duration_sum",
    "cpu_sum",
    *(f"h{i}" for i in range(BUCKETS)),
)
WIDTH = len(COLUMNS)
REQUESTS, STATUS, EXCEPTIONS, SLOW, DURATION, CPU, HISTOGRAM = 0, 1, 6, 7, 8, 9, 10
#: Which columns hold seconds (floats); every other one is a count.
FLOAT_COLUMNS = frozenset({DURATION, CPU})
#: A new row's counters (copy it).
ZERO: list[float] = [0.0 if i in FLOAT_COLUMNS else 0 for i in range(WIDTH)]


def to_row(minute: int, tenant: str, version: str, values: Sequence[Any]) -> SignalRow:
    """The :class:`SignalRow` for one flat row (counts as ints, seconds as floats: as counted,
    and as every sink reads them back)."""
    v = values
    return SignalRow(
        minute,
        tenant,
        version,
        v[REQUESTS],
        (v[1], v[2], v[3], v[4], v[5]),
        v[EXCEPTIONS],
        v[SLOW],
        float(v[DURATION]),
        tuple(v[HISTOGRAM:]),
        float(v[CPU]),
    )


def values(row: SignalRow) -> list[float]:
    """The flat counters of ``row`` (in :data:`COLUMNS` order)."""
    return [
        row.requests,
        *row.status,
        row.exceptions,
        row.slow,
        row.duration_sum,
        row.cpu_sum,
        *row.histogram,
    ]


def add_into(total: list[float], more: Sequence[float]) -> None:
    """Add ``more`` into ``total``, column by column."""
    for i, value in enumerate(more):
        if value:
            total[i] += value

"""The options of signal recording: :class:`SignalsConfig`.

``CohortRouter(..., signals=True)`` records with the defaults; ``signals=SignalsConfig(...)``
changes them. Every option is checked when the config is built, with a message that says what
to give instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .model import SignalSink

log = logging.getLogger(__name__)

#: Seconds in a day, for ``retention_days``.
DAY = 86_400.0


@dataclass(frozen=True)
class SignalsConfig:
    """How requests are counted and how often the counts are written to the store.

    :param slo: seconds; a request slower than this is counted as ``slow``.
    :param flush_interval: seconds between two writes of the counts to the store (also written
        when the router closes and when the process exits).
    :param retention_days: rows of minutes older than this are deleted (Redis keys expire).
    :param cpu_sample: measure the CPU time of one WSGI request in this many (0: never); the
        stored ``cpu_sum`` is the sampled time scaled up by this factor, an estimate of the total.
    :param max_rows: the most (tenant, version) rows one router counts between two flushes
        (about 320 bytes each); requests of further tenants until the next flush are counted
        under :data:`~.model.OVERFLOW_TENANT`.
    :param max_unsent: the most rows kept while the store cannot be written; past it the
        oldest minutes are dropped (and counted in ``Recorder.status()``).
    :param batch: rows per write to the store (each batch is one transaction).
    :param log_context: set the request's tenant and version for
        :class:`~cohortroute.signals.TenantLogFilter` (under ASGI only once such a filter
        exists in the process: a context variable costs about a microsecond a request).
    :param sink: where the rows go; by default the router's store (see ``open_sink``).
    """

    slo: float = 1.0
    flush_interval: float = 5.0
    retention_days: float = 14.0
    cpu_sample: int = 0
    max_rows: int = 100_000
    max_unsent: int = 200_000
    batch: int = 5_000
    log_context: bool = True
    sink: SignalSink | None = None

    def __post_init__(self) -> None:
        _positive("slo", self.slo, "seconds, e.g. slo=1.0")
        _positive("flush_interval", self.flush_interval, "seconds, e.g. flush_interval=5")
        _positive("retention_days", self.retention_days, "days, e.g. retention_days=14")
        for name in ("max_rows", "max_unsent", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a whole number >= 1, not {value!r}")
        sample = self.cpu_sample
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
            raise ConfigurationError(
                f"cpu_sample must be a whole number >= 0 (0: off; 100: one request in 100), "
                f"not {sample!r}"
            )

    @property
    def retention_minutes(self) -> int:
        """The retention in whole minutes."""
        return max(1, math.ceil(self.retention_days * DAY / 60))


def _positive(name: str, value: object, unit: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of {unit}, not {value!r}")

"""Signals: what each version does to each tenant, counted per request and kept in the store.

``CohortRouter(..., signals=True)`` (or ``signals=SignalsConfig(...)``) wraps every mounted
version so each request is counted per (minute, tenant, version): requests, status classes,
unhandled exceptions, slow requests, duration sum and histogram, sampled CPU time. The counts
are flushed to the store every few seconds by each process, with commutative increments, and
read back by the guard, ``cohortroute report`` and the Prometheus endpoint. The package, one
concept a module: :mod:`.model` (rows, tickets, the sink protocol), :mod:`.config`,
:mod:`.counters` (the lock-free counts), :mod:`.wsgi` and :mod:`.asgi` (the wrappers),
:mod:`.context` (the request a thread handles), :mod:`.tenants`, :mod:`.wrappers` (in a router,
and :func:`Signals` standalone), :mod:`.recorder` (flushing), :mod:`.sinks` (one per store backend),
:mod:`.prometheus` and :mod:`.otel` (the exports, whose series :mod:`._series` makes) and
:mod:`.logfilter`.
"""

from .asgi import SignalsASGI
from .config import SignalsConfig
from .logfilter import TenantLogFilter
from .model import (
    HISTOGRAM_BOUNDS,
    OVERFLOW_TENANT,
    SEVERITIES,
    SignalRow,
    SignalSink,
    Ticket,
)
from .otel import register_otel_metrics
from .prometheus import prometheus_app
from .recorder import Recorder
from .sinks import open_sink
from .tenants import TENANT_HEADER
from .wrappers import Signals
from .wsgi import SignalsWSGI

__all__ = [
    "HISTOGRAM_BOUNDS",
    "OVERFLOW_TENANT",
    "SEVERITIES",
    "TENANT_HEADER",
    "Recorder",
    "SignalRow",
    "SignalSink",
    "Signals",
    "SignalsASGI",
    "SignalsConfig",
    "SignalsWSGI",
    "TenantLogFilter",
    "Ticket",
    "open_sink",
    "prometheus_app",
    "register_otel_metrics",
]

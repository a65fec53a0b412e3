"""Signal sinks, one per store backend: :func:`open_sink` picks the one for a store or URL.

Every sink keeps signals and tickets next to the store's own state, never in its tables: the
memory store's sink in the process, SQLite's in two tables of the same file (its own
connection), Redis's under the store's key prefix (its own client), PostgreSQL's in the
store's schema (its own connection). All add rows with commutative increments, so any number
of processes may flush in any order.

``prune`` returns how many rows and tickets it deleted; the Redis sink counts deleted minutes
(one hash each) rather than rows.
"""

from __future__ import annotations

import logging
import weakref
from functools import partial

from ...errors import ConfigurationError
from ...store._registry import open_store
from ...store.base import Store
from ...store.memory import MemoryStore
from ..config import DAY
from ..model import SignalSink
from .memory import MemorySink

log = logging.getLogger(__name__)

# One memory sink per memory store, so every reader of that store sees the same rows.
_MEMORY: weakref.WeakKeyDictionary[MemoryStore, MemorySink] = weakref.WeakKeyDictionary()


def open_sink(store: str | Store, *, retention_days: float = 14.0) -> SignalSink:
    """The signal sink next to ``store`` (a :class:`~cohortroute.store.Store` or its URL).

    ``retention_days`` sets the Redis keys' TTL (other backends are pruned by the recorder).
    A store of another kind (a custom backend) raises ConfigurationError: pass a sink of your
    own as ``SignalsConfig(sink=...)`` instead.
    """
    opened = open_store(store)
    if isinstance(opened, MemoryStore):
        sink = _MEMORY.get(opened)
        if sink is None:
            sink = _MEMORY[opened] = MemorySink()
        return sink
    # Imported by backend, so a missing driver only matters to the backend that needs it.
    from ...store.sqlite import SQLiteStore

    if isinstance(opened, SQLiteStore):
        from .sqlite import SQLiteSink

        return SQLiteSink(opened.path, timeout=opened.timeout, create=opened.create)
    kind = type(opened).__module__
    if kind == "cohortroute.store.redis":
        return _redis_sink(opened, retention_days)
    if kind == "cohortroute.store.postgres":
        return _postgres_sink(opened)
    raise ConfigurationError(
        f"signals have no sink for {opened!r}: they are kept by the memory, sqlite, redis and "
        "postgresql stores; give SignalsConfig(sink=...) an object with the SignalSink methods"
    )


def _redis_sink(store: Store, retention_days: float) -> SignalSink:
    from ...store import redis as backend
    from .redis import RedisSink

    assert isinstance(store, backend.RedisStore)
    # Only the store's settings are kept, never the store (which closes its pool when dropped).
    driver = store._redis
    make_pool = partial(
        backend._make_pool, driver, store._driver_url, store.connect_timeout, store.timeout
    )

    def make_client() -> object:
        return driver.Redis(connection_pool=make_pool())

    return RedisSink(
        make_client, store.prefix, retention_seconds=retention_days * DAY, where=store.url
    )


def _postgres_sink(store: Store) -> SignalSink:
    from ...store import postgres as backend
    from .postgres import PostgresSink

    assert isinstance(store, backend.PostgresStore)
    connect = partial(
        backend._open,
        store._connection_class,
        store._params,
        "cohortroute-signals",
        store.timeout,
    )
    return PostgresSink(
        connect,
        schema=store.schema,
        table_prefix=store.table_prefix,
        where=store.url,
        driver_error=store._psycopg.Error,
    )


__all__ = ["open_sink"]

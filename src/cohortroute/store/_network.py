"""What the network stores (Redis, PostgreSQL) share: one base class.

:class:`NetworkStore` owns what used to be written twice: the URL (scheme check, the options
``connect_timeout``, ``timeout`` and ``push``, the redacted form shown in messages), driver
errors mapped to :class:`~cohortroute.errors.StoreUnavailableError` and
:class:`~cohortroute.errors.StoreError`, unreadable data (the shared :class:`Codec`), the
schema-version check, the per-process connection pool, the push listener, fork hygiene and
:meth:`close`. A backend adds its key or table layout, its pool and its listener.

Connections and the listener belong to the process that opened them. After ``os.fork`` the
fork registry makes the child forget them (it opens its own); a fork that bypassed
``os.register_at_fork`` is noticed by the process id on the next use.
"""

from __future__ import annotations

import abc
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

from .. import _forksafe
from ..errors import (
    CohortRouteError,
    ConfigurationError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    sentence,
)
from ._codec import Codec
from ._push import PushListener
from ._urls import bool_option, number_option, redact, seconds_option
from .base import Store

log = logging.getLogger(__name__)

P = TypeVar("P")
S = TypeVar("S", bound="NetworkStore[Any]")

_DEFAULT_CONNECT_TIMEOUT = 1.0
_DEFAULT_TIMEOUT = 2.0


class NetworkStore(Store, Generic[P]):
    """A store on a server, shared by every process that opens the same URL.

    ``P`` is the backend's per-process connection pool. Query parameters every network store
    takes: ``connect_timeout`` (seconds, default 1), ``timeout`` (seconds per operation,
    default 2), ``push`` (``false`` starts no listener: routers then rely on their periodic
    revision check) and ``mode`` (``rw``: the store must exist already, as with ``create=False``;
    ``rwc``: it may be created); a backend names its own in :attr:`own_options`, numeric driver
    parameters are checked against :attr:`driver_numbers`, and every other parameter is passed
    to the driver.
    """

    refresh_interval = 1.0
    # Across the network: routers read it off the request thread, bounded by lookup_timeout.
    remote = True
    #: What messages call the store ("Redis", "PostgreSQL").
    kind: ClassVar[str] = "network"
    #: The query parameters the backend reads itself (beyond the common ones).
    own_options: ClassVar[tuple[str, ...]] = ()
    #: The newest key or table layout this release reads and writes.
    schema_version: ClassVar[int] = 1
    #: The URL parts an unreachable server makes the operator check.
    url_fields: ClassVar[str] = "host, port and password"
    #: What ``timeout`` bounds, as the unavailable message says it.
    timeout_name: ClassVar[str] = "operation"
    #: Numeric parameters passed to the driver: name -> (minimum, maximum, whole number).
    driver_numbers: ClassVar[dict[str, tuple[float, float, bool]]] = {}
    #: Driver parameters that would override ours: name -> the one to use instead.
    driver_refused: ClassVar[dict[str, str]] = {}

    push: bool = True

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__()
        self.url = redact(url)
        example = f"{self.schemes[0]}://host/..." if self.schemes else "a server URL"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - reading it checks it
        except ValueError as exc:
            raise ConfigurationError(
                f"malformed {self.kind} URL {self.url} ({exc}); write it like {example}, "
                "with an IPv6 host in brackets: [::1]:port"
            ) from None
        if parts.scheme.lower() not in self.schemes:
            raise ConfigurationError(f"not a {self.kind} URL: {self.url}; use {example}")
        options: dict[str, str] = {}
        passthrough: list[tuple[str, str]] = []
        known = ("connect_timeout", "timeout", "push", "mode", *self.own_options)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in known:
                options[key] = value
            elif key in self.driver_refused:
                raise ConfigurationError(
                    f"{key}= in {self.url} is not taken: use {self.driver_refused[key]}= instead"
                )
            else:
                if key in self.driver_numbers:
                    low, high, whole = self.driver_numbers[key]
                    number_option(value, key, url, minimum=low, maximum=high, integer=whole)
                passthrough.append((key, value))
        self.connect_timeout = seconds_option(
            options.pop("connect_timeout", str(_DEFAULT_CONNECT_TIMEOUT)), "connect_timeout", url
        )
        self.timeout = seconds_option(options.pop("timeout", str(_DEFAULT_TIMEOUT)), "timeout", url)
        # push=false: no listener (e.g. behind PgBouncer in transaction mode); routers then see
        # changes through their periodic revision check alone.
        self.push = bool_option(options.pop("push", "true"), "push", url)
        mode = options.pop("mode", None)
        if mode not in (None, "rw", "rwc"):
            raise ConfigurationError(
                f"invalid mode={mode!r} in {self.url}: give mode=rwc (create the store if there "
                "is none yet) or mode=rw (it must exist already)"
            )
        #: False: never create the store (``?mode=rw``, ``open_store(url, create=False)``).
        self.create = create if mode is None else mode == "rwc"
        #: The backend's own options, and the URL without them for the driver.
        self._options = options
        self._driver_parts: SplitResult = parts
        self._driver_query = passthrough

        self._lock = threading.Lock()
        self._pid = _forksafe.pid()
        self._pool: P | None = None
        self._pool_finalizer: weakref.finalize[Any, Any] | None = None
        self._listener: PushListener | None = None
        self._push_wanted = False
        self._codec = Codec(f"the {self.kind} store at {self.url}")

    @classmethod
    def from_url(cls: type[S], url: str, *, create: bool = True) -> S:
        return cls(url, create=create)

    # --- the backend's part ----------------------------------------------------------------

    @abc.abstractmethod
    def _open_pool(self) -> P:
        """A new connection pool for this process (it must not refer to the store)."""

    @staticmethod
    @abc.abstractmethod
    def _close_pool(pool: P) -> None:
        """Close a pool's connections (also run when a store is dropped without close())."""

    def _abandon_pool(self, pool: P) -> None:
        """Forget an inherited pool in a fork's child without disturbing the parent's sessions;
        by default its connections are simply dropped."""

    @abc.abstractmethod
    def _new_listener(self) -> PushListener:
        """A started listener for this store."""

    @property
    @abc.abstractmethod
    def failure_hint(self) -> str:
        """What to check when the server refuses an operation (privileges, key types...)."""

    # --- the process's connections ---------------------------------------------------------

    def _this_process(self) -> None:
        """Forget the parent's connections if a fork happened that nobody told us about."""
        if self._pid != _forksafe.pid():
            self._after_fork_in_child()

    def _after_fork_in_child(self) -> None:
        """Drop what a fork inherited: the parent's connections and listener are the parent's.

        The lock is replaced: one held by a parent's thread at the fork would never be freed.
        """
        super()._after_fork_in_child()
        pool, finalizer = self._pool, self._pool_finalizer
        if finalizer is not None:
            finalizer.detach()
        if pool is not None:
            self._abandon_pool(pool)
        listener = self._listener
        if listener is not None:
            kept = listener.inherited()
            if kept is not None:
                _KEPT_IN_CHILD.append(kept)
        self._lock = threading.Lock()
        self._pid = _forksafe.pid()
        self._pool = self._pool_finalizer = None
        self._listener = None

    def _connections(self) -> P:
        """This process's pool, created on first use (and again after a fork or close)."""
        self._this_process()
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = self._open_pool()
                    # A store dropped without close() still closes its connections.
                    self._pool_finalizer = weakref.finalize(self, type(self)._close_pool, pool)
        return pool

    def _used(self) -> None:
        """After a successful use: start the listener if pushes are wanted and it is not up."""
        if self._push_wanted and self._listener is None:
            self._start_listener()

    def close(self) -> None:
        """Stop the listener and close every connection; the next call reopens lazily.

        Pushes resume with the next :meth:`subscribe` (the periodic revision check goes on).
        """
        self._this_process()
        with self._lock:
            listener, self._listener = self._listener, None
            self._push_wanted = False
            finalizer, self._pool_finalizer, self._pool = self._pool_finalizer, None, None
        if listener is not None:
            listener.stop()
        if finalizer is not None:
            finalizer()  # closes the pool

    # --- push ------------------------------------------------------------------------------

    def subscribe(self, callback: Any) -> None:
        """Call ``callback()`` after every change, including other processes' (pushed)."""
        super().subscribe(callback)
        self._this_process()
        self._push_wanted = self.push
        self._start_listener()

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is None and self._push_wanted:
                self._listener = self._new_listener()

    # --- errors ----------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def _unavailable(self) -> tuple[type[BaseException], ...]:
        """The driver's errors that mean the server cannot be used right now."""

    @property
    @abc.abstractmethod
    def _driver_error(self) -> type[BaseException]:
        """The root of the driver's errors."""

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Map the driver's errors raised while ``doing`` to StoreErrors (original chained)."""
        try:
            yield
        except CohortRouteError:
            raise
        except self._unavailable as exc:
            raise StoreUnavailableError(
                f"cannot use the {self.kind} store at {self.url} while {doing}: "
                f"{sentence(exc)} Check that the server is running and reachable, and the "
                f"{self.url_fields} in the URL (connect timeout {self.connect_timeout:g}s, "
                f"{self.timeout_name} timeout {self.timeout:g}s)."
            ) from exc
        except self._driver_error as exc:
            raise StoreError(
                f"the {self.kind} store at {self.url} failed while {doing}: {sentence(exc)} "
                f"{self.failure_hint}"
            ) from exc

    def _check_schema(self, raw: object, where: str) -> None:
        """Refuse a layout this release does not know (None: not written yet, accepted unless
        the store must exist already)."""
        if raw is None:
            if not self.create:
                raise StoreUnavailableError(
                    f"there is no cohortroute store at {self.url} ({where}: nothing there yet). "
                    "Check the URL; a store is created by the first router that opens it, or "
                    "when its URL ends in ?mode=rwc"
                )
            return
        try:
            version = int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            version = None
        if version is None or not 1 <= version <= self.schema_version:
            raise SchemaError(
                f"the {self.kind} store at {self.url} ({where}) has schema version {raw!r}; "
                f"this cohortroute understands up to {self.schema_version}. Upgrade "
                "cohortroute, or point it at another location."
            )


# Connections a fork's child inherited and must neither use nor close: closing one would end
# the parent's session (the driver says goodbye on the shared socket), dropping one would warn.
_KEPT_IN_CHILD: list[object] = []


def kept_in_child() -> list[object]:
    """Where a backend parks the connections a fork's child inherited (never used nor closed)."""
    return _KEPT_IN_CHILD

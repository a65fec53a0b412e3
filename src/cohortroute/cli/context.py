"""What a command runs with: the store (opened on first use), the actor, the outputs.

Also the exit codes and :class:`UsageError`, the error a handler raises for a command line that
cannot run as given.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from .._clock import SYSTEM, Clock
from ..errors import CohortRouteError, ConfigurationError
from ..store import Store, open_store
from ..store._urls import redact

if TYPE_CHECKING:
    from ..signals.model import SignalSink

log = logging.getLogger(__name__)

ENV_STORE = "COHORTROUTE_STORE"
"""The environment variable naming the store when ``--store`` is not given."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(CohortRouteError):
    """A command line that cannot be run as given (exit 2); the message says how to fix it."""


class Context:
    """What a command runs with: the store (opened on first use), the actor and the outputs.

    ``clock`` and ``sleep`` are the time a command reads and waits on (``rollout run`` between
    passes); in-process callers may pass their own.
    """

    def __init__(
        self,
        store_url: str | None,
        actor: str | None,
        out: TextIO,
        err: TextIO,
        clock: Clock = SYSTEM,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store_url = store_url
        self.actor = actor
        self.out = out
        self.err = err
        self.clock = clock
        self.sleep = sleep
        self._store: Store | None = None
        self._sink: SignalSink | None = None

    @property
    def store(self) -> Store:
        """The store named by ``--store`` or ``$COHORTROUTE_STORE``; opened on first use."""
        if self._store is None:
            if not self.store_url:
                raise UsageError(
                    "no store given: pass --store URL (for example "
                    "--store sqlite:///cohortroute.db) or set the "
                    f"{ENV_STORE} environment variable to the URL your routers use"
                )
            self._store = open_cli_store(self.store_url)
        return self._store

    @property
    def sink(self) -> SignalSink:
        """The signal sink next to the store; opened on first use, closed with the store."""
        if self._sink is None:
            from ..signals import open_sink

            self._sink = open_sink(self.store)
        return self._sink

    @property
    def shown_store(self) -> str:
        """The store URL as output may show it: credentials masked."""
        return redact(self.store_url or "")

    def close(self) -> None:
        """Release the sink's and the store's connections, if they were opened."""
        if self._sink is not None:
            try:
                self._sink.close()
            finally:
                self._sink = None
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None

    def print(self, *lines: str) -> None:
        """Write lines to standard output."""
        for line in lines:
            print(line, file=self.out)

    def warn(self, message: str) -> None:
        """Write a note to standard error (not an error: the command goes on)."""
        print(f"cohortroute: note: {message}", file=self.err)

    def emit_json(self, data: Any) -> None:
        """Write ``data`` as indented JSON to standard output (the ``--json`` output)."""
        json.dump(data, self.out, indent=2)
        self.out.write("\n")

    def command(self) -> str:
        """How to call the CLI against this store again, for the hints commands print."""
        if self.store_url and os.environ.get(ENV_STORE) != self.store_url:
            return f"cohortroute --store {shlex.quote(self.shown_store)}"
        return "cohortroute"

    def changed(self, before: int, after: int, done: str, unchanged: str) -> int:
        """Report a write: what changed and the new revision, or that nothing needed to change."""
        if after == before:
            self.print(f"{unchanged}; nothing changed (revision {after})")
        else:
            self.print(f"{done} (revision {after})")
        if self.store_url and urlsplit(self.store_url).scheme.lower() == "memory":
            self.warn(
                "memory:// lives only in this process, so this change is already gone; "
                "use the URL your routers use (sqlite:///..., redis://..., postgresql://...)"
            )
        return EXIT_OK


def open_cli_store(url: str) -> Store:
    """Open a store URL, turning a backend that cannot be loaded into a ConfigurationError.

    The CLI never creates a store: a mistyped path must not become a new, empty one. Routers
    create it, or a URL that asks for it (``sqlite:///state.db?mode=rwc``).
    """
    try:
        return open_store(url, create=False)
    except ImportError as exc:
        scheme = urlsplit(url).scheme.lower()
        log.debug("cannot load the store backend for %s", redact(url), exc_info=True)
        raise ConfigurationError(
            f"cannot load the store backend for {scheme!r} URLs ({exc}); install the extra it "
            f"needs (pip install 'cohortroute[{scheme}]') or use another store"
        ) from exc

"""What the Redis and the PostgreSQL stores must both do on a real server: one suite, two runs.

:class:`NetworkStoreContract` holds every test the two network stores share -- push, reconnects,
forks, ``push=false``, failures, garbage, schema versions -- and a backend's test module
subclasses it, providing the fixtures ``url`` (an isolated store URL) and ``admin`` (a raw
driver connection) and the hooks that differ per server (how to kill a session, where the
schema version lives...). Only layout and DDL tests stay in the backend's own module.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from cohortroute.errors import ConfigurationError, SchemaError, StoreError, StoreUnavailableError
from cohortroute.store import Store, open_store
from cohortroute.store._network import NetworkStore, kept_in_child
from tests.services import (
    Pushes,
    check_nothing_lost,
    closed_port,
    in_child,
    listener_threads,
    open_fds,
    run_in_processes,
    run_in_threads,
    settle,
    silent_server,
    unique_name,
    with_query,
)

Opener = Callable[[str], Store]


class NetworkStoreContract:
    """The shared behaviour of the network stores; see the module docstring for the hooks."""

    #: The driver module and the extra that installs it.
    driver: ClassVar[str]
    extra: ClassVar[str]
    #: The driver's "cannot connect" exception, chained under StoreUnavailableError.
    unreachable_error: ClassVar[type[BaseException]]
    #: A URL on 127.0.0.1 with a password, ``{port}`` to fill in.
    unreachable_url: ClassVar[str]
    #: The start of the listener thread's name.
    listener_name: ClassVar[str]
    #: How long a listener may take to connect and subscribe.
    connect_wait: ClassVar[float] = 3.0

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def admin(self) -> Any:
        raise NotImplementedError

    def kill_listener(self, admin: Any, store: NetworkStore[Any]) -> int:
        """End the server session of ``store``'s listener; how many sessions were ended."""
        raise NotImplementedError

    def name_connections(self, url: str, name: str) -> str:
        """``url`` with a parameter that names the store's pooled connections ``name``."""
        raise NotImplementedError

    def kill_named(self, admin: Any, name: str) -> int:
        """End the server sessions named ``name``; how many were ended."""
        raise NotImplementedError

    def set_schema_version(self, admin: Any, url: str, version: str) -> None:
        """Make the store at ``url`` claim layout ``version``."""
        raise NotImplementedError

    def break_for_write(self, admin: Any, store: NetworkStore[Any]) -> str:
        """Plant garbage that makes ``store.pin("acme", "1")`` fail; a regex its error matches."""
        raise NotImplementedError

    def hung_url(self, port: int) -> tuple[str, str, float]:
        """A URL to a server that never answers, what the error says, and how fast it comes."""
        raise NotImplementedError

    def _open(self, opener: Opener, url: str) -> NetworkStore[Any]:
        store = opener(url)
        assert isinstance(store, NetworkStore)
        return store

    # --- configuration --------------------------------------------------------------------

    @pytest.mark.parametrize(
        "query", ["timeout=0", "connect_timeout=-1", "connect_timeout=nan", "timeout=soon"]
    )
    def test_bad_common_options_are_refused(self, query: str) -> None:
        url = self.unreachable_url.format(port=1)
        with pytest.raises(ConfigurationError, match=r":\*\*\*@127\.0\.0\.1") as info:
            open_store(f"{url}?{query}")
        assert "hunter2" not in str(info.value)

    def test_push_takes_a_yes_or_no(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="push"):
            open_store(with_query(url, push="maybe"))

    def test_missing_driver_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, self.driver, None)
        with pytest.raises(ConfigurationError, match=rf"pip install 'cohortroute\[{self.extra}\]'"):
            open_store(self.unreachable_url.format(port=1))

    def test_driver_is_imported_only_when_a_store_is_built(self) -> None:
        code = textwrap.dedent(
            f"""
            import sys
            sys.modules[{self.driver!r}] = None
            import cohortroute, cohortroute.store, cohortroute.store.{self.extra}
            from cohortroute.store import open_store
            try:
                open_store({self.unreachable_url.format(port=1)!r})
            except cohortroute.errors.ConfigurationError as exc:
                print(exc)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert f"pip install 'cohortroute[{self.extra}]'" in result.stdout

    # --- atomic, revisioned writes --------------------------------------------------------

    def test_concurrent_threads_lose_no_write(self, url: str, open_stores: Opener) -> None:
        run_in_threads(url, workers=6, writes=15)
        check_nothing_lost(open_stores(url), workers=6, writes=15)

    def test_concurrent_processes_lose_no_write(self, url: str, open_stores: Opener) -> None:
        run_in_processes(url, workers=4, writes=15)
        check_nothing_lost(open_stores(url), workers=4, writes=15)

    def test_a_refused_change_writes_nothing(self, url: str, open_stores: Opener) -> None:
        store = open_stores(url)
        store.register_versions(["1"], default="1")
        with pytest.raises(ValueError, match="unknown version"):
            store.pin("acme", "9")
        assert store.revision() == 1
        store.pin("acme", "1")  # the pooled connection is usable after the rollback
        assert store.revision() == 2

    def test_an_unchanged_state_writes_nothing(self, url: str, open_stores: Opener) -> None:
        store = open_stores(url)
        assert store.register_versions(["1"], default="1") == 1
        assert store.register_versions(["1"], default="1") == 1
        assert store.revision() == 1

    # --- push -----------------------------------------------------------------------------

    def test_a_commit_is_pushed_to_other_instances(self, url: str, open_stores: Opener) -> None:
        writer, reader = open_stores(url), open_stores(url)
        pushes = Pushes()
        reader.subscribe(pushes)
        reader.subscribe(pushes)  # still one listener thread
        assert pushes.wait_for(1, timeout=self.connect_wait), "no notification once subscribed"
        assert len(listener_threads()) == 1
        started = time.monotonic()
        writer.register_versions(["1"])
        assert pushes.wait_for(2, timeout=1)
        assert time.monotonic() - started < 1

    def test_listener_reconnects_after_its_session_ends(
        self, url: str, admin: Any, open_stores: Opener
    ) -> None:
        writer, reader = open_stores(url), self._open(open_stores, url)
        pushes = Pushes()
        reader.subscribe(pushes)
        assert pushes.wait_for(1, timeout=self.connect_wait)
        assert self.kill_listener(admin, reader) >= 1
        # Pushes sent while it was away are lost, so it tells subscribers to re-read on return.
        assert pushes.wait_for(2, timeout=3), "no notification after reconnecting"
        writer.register_versions(["1"])
        assert pushes.wait_for(3, timeout=1), "pushes do not flow after reconnecting"
        assert len(listener_threads()) == 1

    def test_close_stops_the_listener(self, url: str) -> None:
        store = open_store(url)
        pushes = Pushes()
        store.subscribe(pushes)
        assert pushes.wait_for(1, timeout=self.connect_wait)
        store.close()
        assert listener_threads() == []
        assert store.revision() == 0  # reopens lazily, without restarting the listener
        assert listener_threads() == []
        store.close()

    def test_a_dropped_store_stops_its_listener(self, url: str) -> None:
        store = open_store(url)
        store.register_versions(["1"])  # with pooled connections too
        pushes = Pushes()
        store.subscribe(pushes)
        assert pushes.wait_for(1, timeout=self.connect_wait)
        store.close()
        store.subscribe(pushes)  # pushes resume after close
        assert pushes.wait_for(2, timeout=self.connect_wait)
        del store  # never closed: nothing may linger, and no ResourceWarning either
        assert settle(lambda: listener_threads() == []), "listener outlived its store"

    def test_no_thread_or_fd_leak(self, url: str, admin: Any, open_stores: Opener) -> None:
        writer = open_stores(url)
        writer.register_versions(["1"])
        self.kill_named(admin, unique_name())  # the admin's connection is open before counting
        threads, fds = threading.active_count(), open_fds()
        for i in range(10):
            store = open_store(url)
            pushes = Pushes()
            store.subscribe(pushes)
            assert pushes.wait_for(1, timeout=self.connect_wait)
            writer.set_rule(f"t{i}", "1")
            assert pushes.wait_for(2, timeout=2)
            assert store.policy().rules[-1] == (f"t{i}", "1")
            store.close()
        # Repeated outages: every reconnect replaces the connection, it never adds one.
        store = self._open(open_stores, url)
        pushes = Pushes()
        store.subscribe(pushes)
        for outage in range(1, 4):
            assert pushes.wait_for(outage, timeout=3)
            assert self.kill_listener(admin, store) >= 1
        assert pushes.wait_for(4, timeout=3)
        store.close()
        assert settle(lambda: (threading.active_count(), open_fds()) == (threads, fds))

    def test_a_killed_pooled_connection_is_replaced(
        self, url: str, admin: Any, open_stores: Opener
    ) -> None:
        name = unique_name()
        store = open_stores(self.name_connections(url, name))
        store.register_versions(["1"])
        assert self.kill_named(admin, name) == 1
        assert store.revision() == 1  # not an error: the dead session is noticed and replaced
        store.pin("acme", "1")

    def test_push_false_starts_no_listener(self, url: str) -> None:
        def listening() -> int:
            return sum(1 for t in threading.enumerate() if t.name.startswith(self.listener_name))

        store = open_store(with_query(url, push="false"))
        try:
            store.register_versions(["1"])
            before = listening()
            store.subscribe(lambda: None)
            store.pin("acme", "1")
            assert listening() == before  # no listener started for this store
        finally:
            store.close()

    # --- processes ------------------------------------------------------------------------

    @pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork + threads
    def test_a_forked_child_opens_its_own_connections(self, url: str, open_stores: Opener) -> None:
        store = open_stores(url)
        store.register_versions(["1", "2"], default="1")  # the parent has a pooled connection
        pushes = Pushes()
        store.subscribe(pushes)
        assert pushes.wait_for(1, timeout=self.connect_wait)

        def child() -> bool:
            store.pin("forked", "2")
            ok = store.tenant("forked").pin == "2" and len(listener_threads()) == 1
            store.close()  # closes the child's connections only, never the parent's sessions
            return ok

        assert in_child(child) == 0
        # The parent's pooled connection and its listener survived the child.
        assert store.tenant("forked").pin == "2"
        assert pushes.wait_for(2, timeout=1)
        assert store.revision() == 2

    def test_a_pid_change_alone_also_resets_connections(
        self, url: str, open_stores: Opener
    ) -> None:
        store = self._open(open_stores, url)
        store.revision()
        before = store._pool
        assert before is not None
        kept = kept_in_child()
        parked = len(kept)
        store._pid = -1  # as if forked by something that bypasses os.register_at_fork
        try:
            assert store.revision() == 0
            assert store._pool is not None and store._pool is not before
        finally:
            # No fork happened: the "parent's" connections parked for the child are this
            # process's own, so the test closes them (the store rightly does not).
            for conn in kept[parked:]:
                conn.close()  # type: ignore[attr-defined]
            del kept[parked:]

    # --- failures -------------------------------------------------------------------------

    def test_unreachable_server_fails_fast_and_clearly(self) -> None:
        port = closed_port()
        url = self.unreachable_url.format(port=port)
        store = open_store(url)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                store.revision()
            assert time.monotonic() - started < 1.0
            message = str(info.value)
            assert url.replace("hunter2", "***") in message
            assert "hunter2" not in message
            assert "server is running" in message
            assert isinstance(info.value.__cause__, self.unreachable_error)
            with pytest.raises(StoreUnavailableError):
                store.pin("acme", "1")
        finally:
            store.close()

    def test_hung_server_times_out(self) -> None:
        with silent_server() as port:
            url, message, limit = self.hung_url(port)
            store = open_store(url)
            try:
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError, match=message):
                    store.revision()
                assert time.monotonic() - started < limit
            finally:
                store.close()

    def test_a_write_over_garbage_changes_nothing(
        self, url: str, admin: Any, open_stores: Opener
    ) -> None:
        store = self._open(open_stores, url)
        store.register_versions(["1"], default="1")
        match = self.break_for_write(admin, store)
        with pytest.raises(StoreError, match=match):
            store.pin("acme", "1")
        assert store.revision() == 1
        assert store.tenant("acme").pin is None
        assert len(store.history()) == 2

    @pytest.mark.parametrize("version", ["2", "zero", "0"])
    def test_unknown_schema_version_raises_schema_error(
        self, url: str, admin: Any, open_stores: Opener, version: str
    ) -> None:
        open_stores(url).revision()  # lay the store out
        self.set_schema_version(admin, url, version)
        store = open_stores(url)
        with pytest.raises(SchemaError, match="Upgrade cohortroute"):
            store.revision()
        with pytest.raises(SchemaError):
            store.register_versions(["1"])

"""The SQLite store: the shared-store contract, plus what only a file on disk can get wrong.

Processes racing on one file, ``kill -9`` in the middle of a transaction, ``fork``, schema
versions, bad paths and URLs, lock timeouts, and the scale of the per-tenant lookups.
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cohortroute.errors import ConfigurationError, SchemaError, StoreError, StoreUnavailableError
from cohortroute.policy import TenantRecord
from cohortroute.store import Mutation, StateReader, Store, open_store
from cohortroute.store import sqlite as sqlite_module
from cohortroute.store.sqlite import SQLiteStore
from cohortroute.testing.contract import SharedStoreContract, assert_processes_lose_no_write


def url_for(path: Path, query: str = "") -> str:
    """The URL of an absolute path: ``sqlite:////abs/path.db``."""
    return f"sqlite:///{path}{query}"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(path))
    store.register_versions(["1.0", "2.0"], default="1.0")
    yield store
    store.close()


def bulk_pin(store: Store, names: list[str], version: str) -> int:
    """Pin many tenants in one transaction (through the protocol primitive, as a loader would)."""

    def change(state: StateReader) -> Mutation:
        m = Mutation()
        for name in names:
            m.tenants[name] = TenantRecord(name, pin=version)
        m.record("bulk-pin", None, None, len(names))
        return m

    return store._commit(change, "test")


class TestSQLiteStore(SharedStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Iterator[Callable[[], Store]]:
        made: list[Store] = []
        numbers = itertools.count()

        def make() -> Store:
            made.append(SQLiteStore(str(tmp_path / f"store-{next(numbers)}.db")))
            return made[-1]

        yield make
        for store in made:
            store.close()

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return url_for(tmp_path / "shared.db")

    def corrupt_policy(self, store: Store, text: str) -> None:
        assert isinstance(store, SQLiteStore)
        db = sqlite3.connect(store.path)
        try:
            with db:
                db.execute("UPDATE cohortroute_state SET policy = ?", (text,))
        finally:
            db.close()


# --- many processes, crashes, fork --------------------------------------------------------------


def test_eight_processes_times_a_thousand_writes_lose_nothing(tmp_path: Path) -> None:
    # The file does not exist yet: the eight writers also race to create the schema.
    assert_processes_lose_no_write(
        url_for(tmp_path / "busy.db"),
        processes=8,
        writes=1000,
        module="cohortroute.store.sqlite",
    )


WRITER = r"""
import sys
from cohortroute.policy import TenantRecord
from cohortroute.store import Mutation, open_store

store = open_store(sys.argv[1])
names = [f"t{i:04d}" for i in range(int(sys.argv[2]))]
pad = "x" * 400

def change(state):
    write = state.tenant(names[0]).state.get("write", 0) + 1
    print("begin", write, flush=True)  # inside BEGIN IMMEDIATE: the parent kills from here on
    m = Mutation()
    for name in names:
        m.tenants[name] = TenantRecord(name, state={"write": write, "pad": pad})
    m.record("bulk", None, write - 1, write)
    return m

while True:
    print("done", store._commit(change, "crash-test") - 1, flush=True)
"""


def test_kill_9_in_the_middle_of_a_transaction_leaves_exactly_the_committed_writes(
    path: Path,
) -> None:
    url, tenants, rounds = url_for(path), 300, 20
    setup = open_store(url)
    setup.register_versions(["1.0", "2.0"], default="1.0")  # revision 1, three audit entries
    setup.close()
    rng = random.Random(20261112)
    rolled_back = 0
    for _ in range(rounds):
        lines: list[str] = []
        target = rng.randint(1, 4)
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(tenants)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as writer:
            assert writer.stdout is not None
            for line in writer.stdout:
                lines.append(line)
                if line.startswith("begin"):
                    target -= 1
                    if target == 0:
                        time.sleep(rng.uniform(0, 0.004))
                        writer.kill()  # SIGKILL
                        break
            rest, errors = writer.communicate()
        assert writer.returncode == -9, errors
        # What the writer said before it died: the last write it began, the last it finished
        # (a line cut short by the kill says nothing).
        output = "".join(lines) + rest
        said = [line.split() for line in output.splitlines(keepends=True) if line.endswith("\n")]
        begun = max((int(n) for word, n in said if word == "begin"), default=0)
        done = max((int(n) for word, n in said if word == "done"), default=0)

        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            check.close()
        store = open_store(url)
        try:
            written = store.revision() - 1
            assert done <= written, "a write reported as committed was lost"
            assert written in (begun - 1, begun), "the killed write is neither there nor absent"
            rolled_back += written == begun - 1
            records = list(store.tenants())
            assert len(records) == (tenants if written else 0)
            assert {r.state["write"] for r in records} <= {written}, "a half-applied write"
            history = store.history(limit=10_000)
            assert len(history) == 3 + written
            if written:
                assert (history[0].action, history[0].after) == ("bulk", written)
        finally:
            store.close()
    # The kill landed inside a transaction at least once (else the test proved little).
    assert rolled_back >= 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_uses_its_own_connection_and_the_parent_still_works(
    store: SQLiteStore,
) -> None:
    before = store._connection()
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking with threads alive (other suites may leave some); this
        # test is about the store's connections, which no other thread holds.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            mine = store._connection()
            store.pin("child", "2.0")
            if mine is not before and store.tenant("child").pin == "2.0":
                code = 0
            store.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.tenant("child").pin == "2.0"
    assert store.pin("parent", "2.0") == 3
    assert store.revision() == 3


def test_a_connection_from_another_process_is_set_aside_unclosed(store: SQLiteStore) -> None:
    inherited = store._connection()
    store._local.held.pid = -1  # as if this thread's connection came through fork
    assert store._connection() is not inherited
    assert sqlite_module._INHERITED[-1] is inherited
    assert inherited.execute("SELECT 1").fetchone() == (1,)  # never closed by the store
    sqlite_module._INHERITED.remove(inherited)
    inherited.close()
    assert store.pin("acme", "2.0") == 2


def test_each_thread_gets_its_own_connection(store: SQLiteStore) -> None:
    seen: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: seen.append(store._connection()))
    thread.start()
    thread.join()
    assert seen[0] is not store._connection()


# --- locks --------------------------------------------------------------------------------------


def test_readers_never_wait_and_a_long_lock_gives_store_unavailable(path: Path) -> None:
    store = open_store(url_for(path, "?timeout=0.3"))
    store.register_versions(["1.0", "2.0"], default="1.0")
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        assert store.revision() == 1  # WAL: reads go on while another process writes
        assert store.tenant("acme") == TenantRecord("acme")
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"locked for 0\.3 s") as info:
            store.pin("acme", "2.0")
        assert 0.3 <= time.monotonic() - started < 5
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.pin("acme", "2.0") == 2
    store.close()


def test_a_short_lock_is_waited_out(store: SQLiteStore, path: Path) -> None:
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("ROLLBACK"))
    release.start()
    try:
        assert store.pin("acme", "2.0") == 2
    finally:
        release.join()
        blocker.close()


# --- schema -------------------------------------------------------------------------------------


def test_a_store_from_a_newer_cohortroute_is_refused_and_left_alone(
    store: SQLiteStore, path: Path
) -> None:
    store.close()
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE cohortroute_meta SET value = 99 WHERE key = 'schema_version'")
    raw.close()
    newer = open_store(url_for(path))  # built without touching the file
    with pytest.raises(SchemaError, match=r"newer cohortroute.*upgrade cohortroute"):
        newer.revision()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT revision FROM cohortroute_state").fetchone() == (1,)
    raw.close()


def test_an_unreadable_schema_version_is_refused(store: SQLiteStore, path: Path) -> None:
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE cohortroute_meta SET value = 'x' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(SchemaError, match="schema version"):
        SQLiteStore(str(path)).revision()


def test_opening_again_keeps_the_state(store: SQLiteStore, path: Path) -> None:
    store.pin("acme", "2.0")
    again = SQLiteStore(str(path))
    assert again.revision() == 2
    assert again.tenant("acme").pin == "2.0"
    again.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM cohortroute_meta").fetchall() == [(1,)]
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


def test_the_store_can_share_an_application_database(path: Path) -> None:
    app = sqlite3.connect(path)
    with app:
        app.execute("CREATE TABLE users (name TEXT)")
        app.execute("INSERT INTO users VALUES ('ada')")
    app.close()
    store = SQLiteStore(str(path))
    store.register_versions(["1.0"], default="1.0")
    store.close()
    app = sqlite3.connect(path)
    assert app.execute("SELECT name FROM users").fetchall() == [("ada",)]
    app.close()


def test_a_damaged_store_raises_store_error(store: SQLiteStore, path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE cohortroute_tenants")
    raw.close()
    with pytest.raises(StoreError, match=str(path)) as info:
        store.tenant("acme")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    with pytest.raises(StoreError):
        store.pin("acme", "2.0")
    assert store.revision() == 1  # the failed write left nothing behind


# --- URLs and paths -----------------------------------------------------------------------------


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    forms = {
        "sqlite:///relative.db": tmp_path / "relative.db",
        "sqlite:///sub/relative.db": tmp_path / "sub" / "relative.db",
        url_for(tmp_path / "absolute.db"): tmp_path / "absolute.db",
        "sqlite:///with%20space.db": tmp_path / "with space.db",
        "SQLITE:///upper.db": tmp_path / "upper.db",
    }
    for url, expected in forms.items():
        store = open_store(url)
        assert isinstance(store, SQLiteStore)
        assert store.path == str(expected)
        assert store.revision() == 0
        assert expected.exists()
        store.close()


def test_a_relative_path_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///state.db")
    monkeypatch.chdir(tmp_path / "elsewhere")
    store.register_versions(["1.0"], default="1.0")
    store.close()
    assert open_store(url_for(tmp_path / "state.db")).revision() == 1
    assert not (tmp_path / "elsewhere" / "state.db").exists()


def test_url_options(path: Path) -> None:
    store = open_store(url_for(path, "?timeout=2.5&synchronous=normal"))
    assert isinstance(store, SQLiteStore)
    assert store.timeout == 2.5
    assert store._connection().execute("PRAGMA synchronous").fetchone() == (1,)
    store.close()
    store = open_store(url_for(path))
    assert isinstance(store, SQLiteStore)
    assert store.timeout == 30.0
    assert store.refresh_interval == 1.0
    assert store._connection().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/state.db",
        "sqlite://",
        "sqlite:///",
        "sqlite:///folder/",
        "sqlite:///:memory:",
        "sqlite:///file:state.db?mode=ro",
        "sqlite:///state.db#fragment",
        "sqlite:///state.db?timeout=abc",
        "sqlite:///state.db?timeout=-1",
        "sqlite:///state.db?timeout=",
        "sqlite:///state.db?bogus=1",
        "sqlite:///state.db?synchronous=off",
        "sqlite:///state.db?timeout=1&timeout=2",
        # numbers: ASCII decimals in range only (nan made a write wait forever)
        "sqlite:///state.db?timeout=nan",
        "sqlite:///state.db?timeout=inf",
        "sqlite:///state.db?timeout=1e3",
        "sqlite:///state.db?timeout=3601",
        "sqlite:///state.db?timeout=\uff13",
        "sqlite:///state.db?timeout=1_0",
        "sqlite:///state.db?mode=ro",
    ],
)
def test_malformed_urls_are_configuration_errors(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        open_store(url)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_says_which_and_how_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    store = open_store(url_for(missing / "state.db"))  # a router over it still starts
    with pytest.raises(StoreUnavailableError, match=r"does not exist.*mkdir -p") as info:
        store.revision()
    assert str(missing) in str(info.value)
    assert not (tmp_path / "no").exists()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="is a directory"):
        open_store(url_for(tmp_path)).revision()


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    notes.write_bytes(content)
    with pytest.raises(StoreUnavailableError, match="not a SQLite database") as info:
        open_store(url_for(notes)).revision()
    assert str(notes) in str(info.value)
    assert notes.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux permissions and /proc")
def test_an_unwritable_place_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root may write anywhere, except where no file can be created
        target = Path("/proc/cohortroute-state.db")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "state.db"
    try:
        with pytest.raises(StoreUnavailableError, match=str(target.parent)):
            open_store(url_for(target)).revision()
    finally:
        if target.parent != Path("/proc"):
            target.parent.chmod(0o700)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_file_is_refused(path: Path) -> None:
    SQLiteStore(str(path)).close()
    path.chmod(0o400)
    try:
        with pytest.raises(StoreUnavailableError, match="not readable and writable"):
            open_store(url_for(path)).revision()
    finally:
        path.chmod(0o600)


# --- scale --------------------------------------------------------------------------------------


def test_tenants_pages_through_every_record_in_order(store: SQLiteStore) -> None:
    names = [f"t{i:05d}" for i in range(1234)]
    bulk_pin(store, list(reversed(names)), "2.0")
    assert [r.name for r in store.tenants()] == names
    assert all(r.pin == "2.0" for r in store.tenants())


def test_lookups_use_the_indexes(store: SQLiteStore) -> None:
    db = store._connection()

    def plan(sql: str) -> str:
        return " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("acme", 5)))

    assert "USING PRIMARY KEY (name=?)" in plan(
        "SELECT pin FROM cohortroute_tenants WHERE name = ? LIMIT ?"
    )
    assert "USING INDEX cohortroute_audit_tenant (tenant=?)" in plan(
        "SELECT * FROM cohortroute_audit WHERE tenant = ? ORDER BY id DESC LIMIT ?"
    )


def test_a_cold_lookup_among_100k_pinned_tenants_is_well_under_a_millisecond(
    store: SQLiteStore,
) -> None:
    names = [f"tenant{i}" for i in range(100_000)]
    bulk_pin(store, names, "2.0")
    rng = random.Random(7)
    timings = []
    for name in rng.sample(names, 2000):
        started = time.perf_counter()
        record = store.tenant(name)
        timings.append(time.perf_counter() - started)
        assert record.pin == "2.0"
    assert statistics.median(timings) < 0.001

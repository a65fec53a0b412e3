"""The SQLite store's tables: create them, or check the ones a file already holds.

Opening a file checks its schema version first (a file written by a newer cohortroute is refused
before anything in it changes), then switches it to WAL mode and creates the tables -- or, for a
store opened with ``mode=rw``, refuses a file that holds no store at all, leaving it untouched.
"""

from __future__ import annotations

import logging
import sqlite3

from ..errors import ConfigurationError, SchemaError, StoreUnavailableError
from ._sqlite_file import missing

log = logging.getLogger(__name__)

#: The schema this release writes; a file with a higher number is refused.
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cohortroute_meta (
        key TEXT PRIMARY KEY,
        value NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cohortroute_state (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        revision INTEGER NOT NULL,
        policy TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS cohortroute_tenants (
        name TEXT PRIMARY KEY,
        pin TEXT,
        ratchet TEXT,
        tags TEXT,
        state TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cohortroute_audit (
        id INTEGER PRIMARY KEY,
        revision INTEGER NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        tenant TEXT,
        before TEXT,
        after TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS cohortroute_audit_tenant ON cohortroute_audit (tenant, id)",
    "INSERT OR IGNORE INTO cohortroute_state (id, revision, policy) VALUES (0, 0, NULL)",
)


def prepare(db: sqlite3.Connection, path: str, create: bool) -> None:
    """Check the schema version, switch to WAL and create the schema (when ``create``);
    idempotent."""
    found = schema_version(db, path)  # first: a newer store is refused before any change
    if found is None and not create:
        raise StoreUnavailableError(missing(path, "the file holds no cohortroute tables"))
    use_wal(db, path)
    if found == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have created it meanwhile.
        found = schema_version(db, path)
        if found is None:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT INTO cohortroute_meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def schema_version(db: sqlite3.Connection, path: str) -> int | None:
    """The schema version stored in the file, None for a file without our tables."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cohortroute_meta'"
    ).fetchone()
    if exists is None:
        return None
    row = db.execute("SELECT value FROM cohortroute_meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    if not isinstance(row[0], int):
        raise SchemaError(
            f"the SQLite store {path} has an unreadable schema version {row[0]!r}; "
            "it was not written by this cohortroute -- point the URL at another file"
        )
    if row[0] > SCHEMA_VERSION:
        raise SchemaError(
            f"the SQLite store {path} was written by a newer cohortroute (schema "
            f"{row[0]}; this release reads up to {SCHEMA_VERSION}); upgrade cohortroute"
        )
    return int(row[0])


def use_wal(db: sqlite3.Connection, path: str) -> None:
    """Put the file in WAL mode (readers never wait for the writer), or say why it cannot be."""
    mode = str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise ConfigurationError(
            f"cannot put the SQLite store {path} in WAL mode (got {mode!r}); SQLite "
            "needs a local filesystem with shared memory -- move the file off network storage"
        )

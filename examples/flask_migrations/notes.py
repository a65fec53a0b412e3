"""A multi-tenant notes app in two versions whose tenant data have different SQLite schemas.

Each tenant (``acme.notes.test``) has its own SQLite file ``<data>/<tenant>.db``:

* **2026.11** stores a note as one ``text`` column (schema 1);
* **2026.12** splits it into ``title`` and ``body`` (schema 2).

The schema number is kept in the file's ``PRAGMA user_version``. Each version *refuses* to serve
a tenant whose file is at another schema (500 "schema mismatch") -- the bug cohortroute's gating
exists to make impossible, so the demo counts these answers and must see none.

The per-tenant migration between the two schemas is declared with
:class:`cohortroute.migrations.Migrations`, next to the router, and run tenant by tenant by the
rollout controller (``python -m cohortroute rollout run --app notes:migrations``, or
``demo.py`` in this folder).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, abort, jsonify, request

from cohortroute import CohortRouter
from cohortroute.migrations import LeaseLostError, Migrations, StepContext

DATA = Path(os.environ.get("NOTES_DATA", "notes-data"))
STORE = os.environ.get("NOTES_STORE", "sqlite:///notes-state.db")
OLD, NEW = "2026.11", "2026.12"
SCHEMA = {OLD: 1, NEW: 2}


def tenant_file(tenant: str) -> Path:
    return DATA / f"{tenant}.db"


@contextmanager
def connect(tenant: str) -> Iterator[sqlite3.Connection]:
    """One tenant's database, in autocommit mode (transactions are explicit)."""
    DATA.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(tenant_file(tenant), isolation_level=None, timeout=10)
    try:
        yield db
    finally:
        db.close()


def schema_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def claim(db: sqlite3.Connection, step: StepContext | None) -> None:
    """Fencing, inside the step's transaction: refuse a runner older than the last one here.

    ``step.token`` only goes up, one per runner that takes the tenant. A runner paused past its
    lease (and replaced by another) holds an older token, so its transaction is rolled back
    before it changes anything, however late it wakes up. The app's own calls (a new tenant,
    no runner) pass no step.
    """
    if step is None:
        return
    db.execute("CREATE TABLE IF NOT EXISTS cohortroute_fence (token INTEGER NOT NULL)")
    last = db.execute("SELECT max(token) FROM cohortroute_fence").fetchone()[0]
    if last is not None and last > step.token:
        db.execute("ROLLBACK")
        raise LeaseLostError(f"{step.tenant}: a newer runner (token {last}) owns it now")
    db.execute("DELETE FROM cohortroute_fence")
    db.execute("INSERT INTO cohortroute_fence VALUES (?)", (step.token,))


# --- the migrations: schema 1 (text) <-> schema 2 (title, body) ----------------------------------

migrations = Migrations(
    retry_after=5,
    discover=lambda: sorted(p.stem for p in DATA.glob("*.db")) if DATA.exists() else [],
)
migrations.version(OLD, notes=1)
migrations.version(NEW, notes=2)


@migrations.upgrade(1, module="notes")
def create_notes(tenant: str, step: StepContext | None = None) -> None:
    """Schema 1: a tenant's first table (what 2026.11 creates for a new tenant)."""
    with connect(tenant) as db:
        db.execute("BEGIN IMMEDIATE")
        claim(db, step)
        db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("PRAGMA user_version = 1")
        db.execute("COMMIT")


@migrations.upgrade(2, module="notes")
def split_title(tenant: str, step: StepContext | None = None) -> None:
    """Schema 1 -> 2: the first line of ``text`` becomes ``title``, the rest ``body``.

    One transaction: it either happens completely or not at all, so a crash mid-step leaves
    schema 1 and the runner simply runs the step again. The fence claim commits with it.
    """
    with connect(tenant) as db:
        db.execute("BEGIN IMMEDIATE")
        claim(db, step)
        if schema_of(db) >= 2:  # idempotent: already done
            db.execute("ROLLBACK")
            return
        rows = db.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
        db.execute(
            "CREATE TABLE notes_v2"
            " (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)"
        )
        for note_id, text in rows:
            title, _, body = text.partition("\n")
            db.execute("INSERT INTO notes_v2 VALUES (?, ?, ?)", (note_id, title, body))
        db.execute("DROP TABLE notes")
        db.execute("ALTER TABLE notes_v2 RENAME TO notes")
        db.execute("PRAGMA user_version = 2")
        db.execute("COMMIT")


@migrations.downgrade(2, module="notes")
def join_title(tenant: str, step: StepContext | None = None) -> None:
    """Schema 2 -> 1: ``title`` and ``body`` joined again by a newline."""
    with connect(tenant) as db:
        db.execute("BEGIN IMMEDIATE")
        claim(db, step)
        if schema_of(db) < 2:
            db.execute("ROLLBACK")
            return
        rows = db.execute("SELECT id, title, body FROM notes ORDER BY id").fetchall()
        db.execute("CREATE TABLE notes_v1 (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        for note_id, title, body in rows:
            text = f"{title}\n{body}" if body else title
            db.execute("INSERT INTO notes_v1 VALUES (?, ?)", (note_id, text))
        db.execute("DROP TABLE notes")
        db.execute("ALTER TABLE notes_v1 RENAME TO notes")
        db.execute("PRAGMA user_version = 1")
        db.execute("COMMIT")


# --- the two versions of the app ------------------------------------------------------------------


def make_app(version: str) -> Flask:
    """One version of the notes app; it only ever touches tenant data at its own schema."""
    app = Flask(f"notes-{version}")
    wanted = SCHEMA[version]

    @contextmanager
    def tenant_db() -> Iterator[sqlite3.Connection]:
        tenant = request.environ.get("cohortroute.tenant")
        if tenant is None:
            abort(404)
        new_tenant = not tenant_file(tenant).exists()
        with connect(tenant) as db:
            if new_tenant:  # a brand-new tenant starts at this version's schema
                create_notes(tenant)
                if wanted == 2:
                    split_title(tenant)
            # Check the schema and use the data in one transaction, so the check holds.
            db.execute("BEGIN IMMEDIATE")
            found = schema_of(db)
            if found != wanted:
                db.execute("ROLLBACK")
                abort(500, f"schema mismatch: {version} needs schema {wanted}, found {found}")
            yield db
            db.execute("COMMIT")

    @app.get("/")
    def index() -> object:
        with tenant_db() as db:
            if wanted == 1:
                notes = [{"text": t} for (t,) in db.execute("SELECT text FROM notes ORDER BY id")]
            else:
                notes = [
                    {"title": t, "body": b}
                    for t, b in db.execute("SELECT title, body FROM notes ORDER BY id")
                ]
        decision = request.environ["cohortroute.decision"]
        return jsonify(version=version, reason=str(decision.reason), notes=notes)

    @app.post("/notes")
    def add() -> object:
        with tenant_db() as db:
            if wanted == 1:
                db.execute("INSERT INTO notes (text) VALUES (?)", (request.form["text"],))
            else:
                db.execute(
                    "INSERT INTO notes (title, body) VALUES (?, ?)",
                    (request.form["title"], request.form.get("body", "")),
                )
        return jsonify(version=version, added=True), 201

    return app


def make_router(store: str | None = None, refresh_interval: float | None = None) -> CohortRouter:
    """The router: both versions mounted, the maintenance response from the migrations.

    The runner's ``drain`` must be at least this router's ``refresh_interval`` (plus the longest
    request): that is how long a router may keep serving a decision it cached before a tenant
    was marked *migrating*.
    """
    return CohortRouter(
        apps={OLD: make_app(OLD), NEW: make_app(NEW)},
        default=OLD,
        domains=["notes.test"],
        store=store or STORE,
        migrations=migrations,
        refresh_interval=refresh_interval,
    )

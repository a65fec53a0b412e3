"""The PostgreSQL store's statements, with the configured schema and table names quoted in."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: The table layout this release writes; a database holding a higher number needs a newer one.
SCHEMA_VERSION = 1


class Queries:
    """Every statement, with the configured schema and table names quoted in once."""

    def __init__(self, sql: Any, schema: str | None, prefix: str) -> None:
        def table(name: str) -> Any:
            full = prefix + name
            return sql.Identifier(schema, full) if schema else sql.Identifier(full)

        names = {
            "meta": table("meta"),
            "state": table("state"),
            "tenants": table("tenants"),
            "audit": table("audit"),
            "audit_tenant": sql.Identifier(prefix + "audit_tenant"),
            "schema": sql.Identifier(schema or "public"),
        }

        def q(text: str) -> str:
            composed: str = sql.SQL(text).format(**names).as_string()
            return composed

        ddl = [
            q("CREATE SCHEMA IF NOT EXISTS {schema}") if schema else None,
            q("CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value text NOT NULL)"),
            q(
                "CREATE TABLE IF NOT EXISTS {state} (id smallint PRIMARY KEY CHECK (id = 1), "
                "revision bigint NOT NULL, policy json)"
            ),
            q("CREATE TABLE IF NOT EXISTS {tenants} (name text PRIMARY KEY, record json NOT NULL)"),
            q(
                "CREATE TABLE IF NOT EXISTS {audit} (id bigserial PRIMARY KEY, "
                "revision bigint NOT NULL, at double precision NOT NULL, actor text NOT NULL, "
                "action text NOT NULL, tenant text, before json, after json)"
            ),
            q(
                "CREATE INDEX IF NOT EXISTS {audit_tenant} ON {audit} (tenant, id) "
                "WHERE tenant IS NOT NULL"
            ),
            q("INSERT INTO {state} VALUES (1, 0, NULL) ON CONFLICT DO NOTHING"),
            q(
                f"INSERT INTO {{meta}} VALUES ('schema_version', '{SCHEMA_VERSION}') "
                "ON CONFLICT DO NOTHING"
            ),
        ]
        #: The statements that create the tables, idempotently.
        self.create = [statement for statement in ddl if statement is not None]
        self.schema_version = q("SELECT value FROM {meta} WHERE name = 'schema_version'")
        self.revision = q("SELECT revision FROM {state} WHERE id = 1")
        self.policy = q("SELECT revision, policy FROM {state} WHERE id = 1")
        self.lock = q("SELECT revision, policy FROM {state} WHERE id = 1 FOR UPDATE")
        self.tenant = q("SELECT record FROM {tenants} WHERE name = %s")
        self.tenants_in = q("SELECT name, record FROM {tenants} WHERE name = ANY(%s)")
        self.tenants = q('SELECT name, record FROM {tenants} ORDER BY name COLLATE "C"')
        columns = "revision, at, actor, action, tenant, before, after"
        self.history = q(f"SELECT {columns} FROM {{audit}} ORDER BY id DESC LIMIT %s")
        self.tenant_history = q(
            f"SELECT {columns} FROM {{audit}} WHERE tenant = %s ORDER BY id DESC LIMIT %s"
        )
        self.set_revision = q("UPDATE {state} SET revision = %s WHERE id = 1")
        self.set_state = q("UPDATE {state} SET revision = %s, policy = %s WHERE id = 1")
        self.put_tenant = q(
            "INSERT INTO {tenants} (name, record) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record"
        )
        self.delete_tenant = q("DELETE FROM {tenants} WHERE name = %s")
        self.audit = q(f"INSERT INTO {{audit}} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)")
        self.notify = "SELECT pg_notify(%s, %s)"
        # A statement (or a wait for a lock) gives up after `timeout` on the server too; a
        # session stuck inside a transaction (a frozen client) releases its locks after five.
        self.local_timeouts = (
            "SELECT set_config('statement_timeout', %s, true), "
            "set_config('idle_in_transaction_session_timeout', %s, true)"
        )

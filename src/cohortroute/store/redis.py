"""The Redis store: ``redis://host:6379/0?prefix=cohortroute`` (``rediss://`` for TLS).

Every key lives under a prefix (``cohortroute:`` by default), so several deployments -- or test
runs -- can share one database::

    {prefix}revision         string  the revision (absent = 0)
    {prefix}schema           string  the layout version, written by every commit
    {prefix}policy           string  the policy JSON
    {prefix}tenants          hash    tenant name -> record JSON
    {prefix}audit            list    audit entry JSON, oldest first
    {prefix}audit:{tenant}   list    the same entries, for one tenant only
    {prefix}changes          channel the new revision, published by every commit

Writes are optimistic: the change function runs on plain reads, then one Lua script checks that
the revision has not moved, writes the records, the audit entries and the revision together and
publishes the new revision. A moved revision means another writer won; the change function is
re-run on fresh state. A script either applies everything or nothing (it checks key types before
writing), so no write is ever lost or half-applied.

Query parameters: ``prefix``, ``connect_timeout`` (seconds, default 1), ``timeout`` (seconds
per operation, default 2) and ``push`` (``false`` starts no pub/sub listener: routers then rely
on their periodic revision check); any other parameter is passed to redis-py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import (
    CohortRouteError,
    ConfigurationError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    sentence,
)
from ..policy import (
    AuditEntry,
    Policy,
    TenantRecord,
    audit_from_json,
    audit_to_json,
    policy_from_json,
    policy_to_json,
    tenant_from_json,
    tenant_to_json,
)
from ._push import POLL, PushListener, PushStore
from ._urls import bool_option, redact, seconds_option
from .base import ChangeFn, StateReader

if TYPE_CHECKING:
    import redis

log = logging.getLogger("cohortroute.store.redis")

# What redis-py's annotations say a read returns (we never ask it to decode: always bytes).
_Raw = bytes | str

#: The key layout this release writes; a store holding a higher number was written by a newer one.
SCHEMA_VERSION = 1

_DEFAULT_PREFIX = "cohortroute:"
_DEFAULT_CONNECT_TIMEOUT = 1.0
_DEFAULT_TIMEOUT = 2.0

# KEYS: revision, schema, policy, tenants, audit, then one per-tenant audit list per entry.
# ARGV: expected revision, new revision, schema version, channel, policy JSON ('' = unchanged),
#       number of tenant writes n, n pairs (name, record JSON or '' to delete), then audit
#       entries as pairs (JSON, index into KEYS of the tenant's list or '0').
_COMMIT_LUA = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return {'conflict'} end
local kinds = {'string', 'string', 'string', 'hash', 'list'}
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  local want = kinds[i] or 'list'
  if kind ~= 'none' and kind ~= want then return {'wrongtype', KEYS[i], kind, want} end
end
local schema = redis.call('GET', KEYS[2])
if schema and schema ~= ARGV[3] then return {'schema', schema} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[4], ARGV[i])
  else
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
while i <= #ARGV do
  redis.call('RPUSH', KEYS[5], ARGV[i])
  local index = tonumber(ARGV[i + 1])
  if index > 0 then redis.call('RPUSH', KEYS[index], ARGV[i]) end
  i = i + 2
end
redis.call('PUBLISH', ARGV[4], ARGV[2])
return {'ok'}
"""
_COMMIT_SHA = hashlib.sha1(_COMMIT_LUA.encode(), usedforsecurity=False).hexdigest()


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "the Redis store needs the redis package: pip install 'cohortroute[redis]'"
        ) from exc
    return redis


def _make_pool(
    module: Any, url: str, connect_timeout: float, timeout: float, **extra: Any
) -> redis.ConnectionPool:
    # No driver-level retries: a dead pooled connection is detected and reopened by the pool
    # itself, and retrying an unreachable server would multiply the connect timeout.
    pool: redis.ConnectionPool = module.ConnectionPool.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=module.retry.Retry(module.backoff.NoBackoff(), 0),
        **extra,
    )
    return pool


class _Reader(StateReader):
    """The state as a commit sees it: the policy read with the revision, tenants on demand."""

    def __init__(self, store: RedisStore, client: redis.Redis, policy: Policy) -> None:
        self._store = store
        self._client = client
        self._policy = policy

    def policy(self) -> Policy:
        return self._policy

    def tenant(self, name: str) -> TenantRecord:
        return self._store._read_tenant(self._client, name)


class RedisStore(PushStore, scheme=("redis", "rediss")):
    """State in a Redis database, shared by every process that opens the same URL and prefix.

    Connections are opened lazily by the process that uses them (never inherited across a
    fork) from a thread-safe pool. :meth:`subscribe` starts one listener thread that turns the
    pushes of other processes' commits into change notifications.
    """

    refresh_interval = 1.0
    # Across the network: routers read it off the request thread, bounded by lookup_timeout.
    remote = True

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("redis", "rediss"):
            raise ConfigurationError(f"not a Redis URL: {redact(url)}; use redis://host:6379/0")
        options: dict[str, str] = {}
        passthrough: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in ("prefix", "connect_timeout", "timeout", "push"):
                options[key] = value
            else:
                passthrough.append((key, value))
        self.url = redact(url)
        prefix = options.get("prefix", _DEFAULT_PREFIX)
        if not prefix:
            raise ConfigurationError(f"empty prefix in {self.url}: give one, like ?prefix=myapp")
        self.prefix = prefix if prefix.endswith(":") else prefix + ":"
        self.connect_timeout = seconds_option(
            options.get("connect_timeout", str(_DEFAULT_CONNECT_TIMEOUT)), "connect_timeout", url
        )
        self.timeout = seconds_option(options.get("timeout", str(_DEFAULT_TIMEOUT)), "timeout", url)
        # push=false: no listener (e.g. behind PgBouncer in transaction mode); routers then see
        # changes through their periodic revision check alone.
        self.push = bool_option(options.get("push", "true"), "push", url)
        self._driver_url = urlunsplit(parts._replace(query=urlencode(passthrough)))

        self._redis = _import_redis()
        try:
            self._redis.connection.parse_url(self._driver_url)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL {self.url}: {exc}") from exc
        self._unavailable: tuple[type[BaseException], ...] = (
            self._redis.exceptions.ConnectionError,
            self._redis.exceptions.TimeoutError,
        )
        self._driver_error: type[BaseException] = self._redis.exceptions.RedisError

        p = self.prefix
        self._k_revision, self._k_schema = f"{p}revision", f"{p}schema"
        self._k_policy = f"{p}policy"
        self._k_tenants, self._k_audit = f"{p}tenants", f"{p}audit"
        #: The pub/sub channel every commit publishes its new revision on.
        self.channel = f"{p}changes"

        self._pool: redis.ConnectionPool | None = None
        self._client: redis.Redis | None = None
        self._schema_checked = False

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(url)

    def __repr__(self) -> str:
        return f"<RedisStore {self.url} prefix={self.prefix!r}>"

    # --- connections ------------------------------------------------------------------------

    def _make_pool(self, **extra: Any) -> redis.ConnectionPool:
        return _make_pool(
            self._redis, self._driver_url, self.connect_timeout, self.timeout, **extra
        )

    def _conn(self) -> redis.Redis:
        """This process's client, created on first use (and again after a fork or close)."""
        if self._pid != os.getpid():
            self._forget_parent()
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    self._pool = self._make_pool()
                    client = self._client = self._redis.Redis(connection_pool=self._pool)
        if not self._schema_checked:
            with self._errors("checking the schema version"):
                raw = client.get(self._k_schema)
            self._check_schema(raw)
            self._schema_checked = True
        if self._push_wanted and self._listener is None:
            self._start_listener()
        return client

    def _forget_parent(self) -> None:
        """Drop what a fork inherited: the parent's sockets and listener belong to the parent.

        redis-py closes an inherited connection without telling the server, so letting them go
        never disturbs the parent's sessions. The lock is replaced too (PushStore does it).
        """
        super()._forget_parent()
        self._pool = None
        self._client = None

    def close(self) -> None:
        """Stop the listener and close every connection; the next call reopens lazily.

        Pushes resume with the next :meth:`subscribe` (the periodic revision check goes on).
        """
        if self._pid != os.getpid():
            self._forget_parent()
        with self._lock:
            listener = self._take_listener()
            pool, self._pool, self._client = self._pool, None, None
        if listener is not None:
            listener.stop()
        if pool is not None:
            pool.disconnect()

    # --- errors -----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except CohortRouteError:
            raise
        except self._unavailable as exc:
            raise StoreUnavailableError(
                f"cannot reach the Redis store at {self.url} while {doing}: {sentence(exc)} "
                "Check that the server is running and reachable, and the host, port, password "
                f"and TLS settings in the URL (connect timeout {self.connect_timeout:g}s, "
                f"operation timeout {self.timeout:g}s)."
            ) from exc
        except self._driver_error as exc:
            raise StoreError(
                f"the Redis store at {self.url} failed while {doing}: {exc}. If a key under "
                f"{self.prefix!r} holds the wrong type, another program wrote there: use a "
                "different ?prefix= or delete the key."
            ) from exc

    def _garbage(self, key: str, problem: str, exc: BaseException | None = None) -> StoreError:
        error = StoreError(
            f"the Redis store at {self.url} holds unreadable data in {key!r}: {problem}. Another "
            f"program may have written under the prefix {self.prefix!r}; restore it from the "
            "audit log or a backup, or use a different ?prefix=."
        )
        error.__cause__ = exc
        return error

    def _check_schema(self, raw: _Raw | None) -> None:
        if raw is None:
            return
        try:
            version = int(raw)
        except ValueError:
            version = None
        if version is None or version > SCHEMA_VERSION or version < 1:
            raise SchemaError(
                f"the Redis store at {self.url} (prefix {self.prefix!r}) has schema version "
                f"{raw!r}; this cohortroute understands up to {SCHEMA_VERSION}. Upgrade "
                "cohortroute, or point it at another prefix."
            )

    def _json(self, key: str, raw: _Raw, kind: type[Any]) -> Any:
        try:
            data = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self._garbage(key, "not valid JSON", exc) from exc
        if not isinstance(data, kind):
            raise self._garbage(key, f"expected a JSON {kind.__name__}, got {data!r:.80}")
        return data

    def _revision_of(self, raw: _Raw | None) -> int:
        if raw is None:
            return 0
        try:
            revision = int(raw)
        except ValueError as exc:
            raise self._garbage(self._k_revision, f"not an integer: {raw!r:.80}", exc) from exc
        if revision < 0:
            raise self._garbage(self._k_revision, f"negative revision {revision}")
        return revision

    def _policy_of(self, raw: _Raw | None, revision: int) -> Policy:
        data = None if raw is None else self._json(self._k_policy, raw, dict)
        try:
            return policy_from_json(data, revision)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._garbage(self._k_policy, f"not a policy ({exc!r})", exc) from exc

    def _tenant_of(self, name: str, raw: _Raw | None) -> TenantRecord:
        data = None if raw is None else self._json(f"{self._k_tenants}[{name}]", raw, dict)
        try:
            return tenant_from_json(name, data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            where = f"{self._k_tenants}[{name}]"
            raise self._garbage(where, f"not a tenant record ({exc!r})", exc) from exc

    def _entry_of(self, key: str, raw: _Raw) -> AuditEntry:
        try:
            return audit_from_json(self._json(key, raw, dict))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._garbage(key, f"not an audit entry ({exc!r})", exc) from exc

    # --- reads ------------------------------------------------------------------------------

    def revision(self) -> int:
        client = self._conn()
        with self._errors("reading the revision"):
            raw = client.get(self._k_revision)
        return self._revision_of(raw)

    def policy(self) -> Policy:
        client = self._conn()
        with self._errors("reading the policy"):
            raw_revision, raw_policy = self._get(client, self._k_revision, self._k_policy)
        return self._policy_of(raw_policy, self._revision_of(raw_revision))

    @staticmethod
    def _get(client: redis.Redis, *keys: str) -> list[_Raw | None]:
        """GET several keys at one point in time, in one round trip.

        Unlike MGET, which answers nil for a key of the wrong type, GET inside MULTI/EXEC
        reports it, so garbage is never mistaken for an empty store.
        """
        with client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.get(key)
            values: list[_Raw | None] = pipe.execute()
        return values

    def _read_tenant(self, client: redis.Redis, name: str) -> TenantRecord:
        with self._errors(f"reading tenant {name!r}"):
            raw = client.hget(self._k_tenants, name)
        return self._tenant_of(name, raw)

    def tenant(self, name: str) -> TenantRecord:
        return self._read_tenant(self._conn(), name)

    def tenants(self) -> Iterator[TenantRecord]:
        client = self._conn()
        with self._errors("listing tenants"):
            # HSCAN rather than HGETALL: a big hash is read in slices without blocking the server.
            raw = dict(client.hscan_iter(self._k_tenants, count=500))
        records = []
        for key, value in raw.items():
            try:
                name = key.decode()
            except UnicodeDecodeError as exc:
                raise self._garbage(self._k_tenants, f"tenant name {key!r}", exc) from exc
            records.append(self._tenant_of(name, value))
        records.sort(key=lambda record: record.name)
        return iter(records)

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit <= 0:
            return []
        key = self._k_audit if tenant is None else f"{self._k_audit}:{tenant}"
        client = self._conn()
        with self._errors("reading the audit log"):
            raw = client.lrange(key, -limit, -1)
        return [self._entry_of(key, item) for item in reversed(raw)]

    # --- writes -----------------------------------------------------------------------------

    def _commit(self, change: ChangeFn, actor: str) -> int:
        client = self._conn()
        deadline = time.monotonic() + 5 * self.timeout
        attempt = 0
        while True:
            attempt += 1
            with self._errors("reading the state to change"):
                raw_revision, raw_schema, raw_policy = self._get(
                    client, self._k_revision, self._k_schema, self._k_policy
                )
            self._check_schema(raw_schema)
            revision = self._revision_of(raw_revision)
            mutation = change(_Reader(self, client, self._policy_of(raw_policy, revision)))
            if not mutation:
                return revision
            new = revision + 1
            keys = [self._k_revision, self._k_schema, self._k_policy, self._k_tenants]
            keys.append(self._k_audit)
            args: list[str | int] = [revision, new, SCHEMA_VERSION, self.channel]
            args.append("" if mutation.policy is None else _dump(policy_to_json(mutation.policy)))
            args.append(len(mutation.tenants))
            for name, record in mutation.tenants.items():
                args += [name, "" if record.is_empty() else _dump(tenant_to_json(record))]
            for entry in mutation.audit(new, actor, time.time()):
                index = 0
                if entry.tenant is not None:
                    keys.append(f"{self._k_audit}:{entry.tenant}")
                    index = len(keys)
                args += [_dump(audit_to_json(entry)), index]
            with self._errors("writing a change"):
                result = self._run_commit(client, keys, args)
            status = result[0] if isinstance(result, list) and result else None
            if status == b"ok":
                return new
            if status == b"wrongtype":
                key, kind, want = (part.decode(errors="replace") for part in result[1:4])
                raise self._garbage(key, f"a Redis {kind} where a {want} belongs")
            if status == b"schema":
                self._check_schema(result[1])
            if status != b"conflict":
                raise StoreError(f"unexpected reply {result!r} from the Redis store at {self.url}")
            if time.monotonic() > deadline:
                raise StoreError(
                    f"gave up writing to the Redis store at {self.url} after {attempt} attempts: "
                    "other writers kept changing the state first. Retry the change."
                )
            # Another writer committed first: re-run the change on fresh state, after a short
            # randomised pause so that competing writers spread out.
            time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))

    def _run_commit(self, client: redis.Redis, keys: list[str], args: list[str | int]) -> Any:
        try:
            return client.evalsha(_COMMIT_SHA, len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            # First commit since the server started (or flushed its script cache).
            return client.eval(_COMMIT_LUA, len(keys), *keys, *args)

    # --- push -------------------------------------------------------------------------------

    def _new_listener(self) -> _Listener:
        listener = _Listener(self)
        listener.start()
        return listener


class _Listener(PushListener):
    """Redis pub/sub -> ``store._notify()``: subscribe first, then tell subscribers to re-read."""

    kind = "Redis"

    def __init__(self, store: RedisStore) -> None:
        super().__init__(
            store,
            name=f"cohortroute-redis-listener {store.prefix}",
            url=store.url,
            # At worst it is connecting, or waiting for the SUBSCRIBE confirmation.
            join_timeout=store.connect_timeout + store.timeout + 1,
            errors=(store._driver_error, OSError),
        )
        # Bound to the connection parameters, not to the store, which must stay collectable.
        self._make_pool: Callable[..., redis.ConnectionPool] = functools.partial(
            _make_pool, store._redis, store._driver_url, store.connect_timeout, store.timeout
        )
        self._redis = store._redis
        self._channel = store.channel
        self._timeout = store.timeout

    def _session(self) -> bool:
        pool = self._make_pool(max_connections=1, client_name="cohortroute-listener")
        try:
            with self._redis.Redis(connection_pool=pool).pubsub() as pubsub:
                pubsub.subscribe(self._channel)
                confirmation = pubsub.get_message(timeout=self._timeout)
                if confirmation is None or confirmation.get("type") != "subscribe":
                    raise self._redis.exceptions.TimeoutError(
                        f"no confirmation of SUBSCRIBE {self._channel} ({confirmation!r})"
                    )
                if not self._notify():
                    return False
                while not self._stopped():
                    message = pubsub.get_message(timeout=POLL)
                    if message is not None and message.get("type") == "message":
                        if not self._notify():
                            return False
                    elif self._store() is None:
                        return False
            return True
        finally:
            pool.disconnect()


def _dump(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))

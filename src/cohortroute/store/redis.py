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
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from .._backoff import attempt_delay
from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from ..policy import AuditEntry, Policy, TenantRecord
from ._codec import Codec, encode_audit, encode_policy, encode_tenant
from ._network import NetworkStore
from ._push import POLL, PushListener
from .base import ChangeFn, FunctionReader

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# What redis-py's annotations say a read returns (we never ask it to decode: always bytes).
_Raw = bytes | str

#: The key layout this release writes; a store holding a higher number was written by a newer one.
SCHEMA_VERSION = 1

_DEFAULT_PREFIX = "cohortroute:"

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


class RedisStore(NetworkStore["redis.Redis"], scheme=("redis", "rediss")):
    """State in a Redis database, shared by every process that opens the same URL and prefix.

    Connections are opened lazily by the process that uses them (never inherited across a
    fork) from a thread-safe pool. :meth:`subscribe` starts one listener thread that turns the
    pushes of other processes' commits into change notifications.
    """

    kind = "Redis"
    own_options = ("prefix",)
    schema_version = SCHEMA_VERSION
    url_fields = "host, port, password and TLS settings"
    timeout_name = "operation"
    driver_numbers: ClassVar[dict[str, tuple[float, float, bool]]] = {
        "db": (0, 65535, True),
        "health_check_interval": (0, 3600, True),
        "max_connections": (1, 100_000, True),
    }
    driver_refused: ClassVar[dict[str, str]] = {
        "socket_timeout": "timeout",
        "socket_connect_timeout": "connect_timeout",
    }

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url, create=create)
        prefix = self._options.get("prefix", _DEFAULT_PREFIX)
        if not prefix:
            raise ConfigurationError(f"empty prefix in {self.url}: give one, like ?prefix=myapp")
        self.prefix = prefix if prefix.endswith(":") else prefix + ":"
        self._codec = Codec(
            f"the Redis store at {self.url}",
            f"Another program may have written under the prefix {self.prefix!r}; restore it "
            "from the audit log or a backup, or use a different ?prefix=.",
        )
        self._driver_url = urlunsplit(
            self._driver_parts._replace(query=urlencode(self._driver_query))
        )
        self._redis = _import_redis()
        try:
            self._redis.connection.parse_url(self._driver_url)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL {self.url}: {exc}") from exc

        p = self.prefix
        self._k_revision, self._k_schema = f"{p}revision", f"{p}schema"
        self._k_policy = f"{p}policy"
        self._k_tenants, self._k_audit = f"{p}tenants", f"{p}audit"
        #: The pub/sub channel every commit publishes its new revision on.
        self.channel = f"{p}changes"
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"<RedisStore {self.url} prefix={self.prefix!r}>"

    @property
    def _unavailable(self) -> tuple[type[BaseException], ...]:
        return (self._redis.exceptions.ConnectionError, self._redis.exceptions.TimeoutError)

    @property
    def _driver_error(self) -> type[BaseException]:
        error: type[BaseException] = self._redis.exceptions.RedisError
        return error

    @property
    def failure_hint(self) -> str:
        return (
            f"If a key under {self.prefix!r} holds the wrong type, another program wrote "
            "there: use a different ?prefix= or delete the key."
        )

    # --- connections ------------------------------------------------------------------------

    def _make_pool(self, **extra: Any) -> redis.ConnectionPool:
        return _make_pool(
            self._redis, self._driver_url, self.connect_timeout, self.timeout, **extra
        )

    def _open_pool(self) -> redis.Redis:
        client: redis.Redis = self._redis.Redis(connection_pool=self._make_pool())
        return client

    @staticmethod
    def _close_pool(pool: redis.Redis) -> None:
        pool.connection_pool.disconnect()

    def _conn(self) -> redis.Redis:
        """This process's client, created on first use (and again after a fork or close)."""
        client = self._connections()
        if not self._schema_checked:
            try:
                with self._errors("checking the schema version"):
                    raw = client.get(self._k_schema)
            except StoreError as exc:
                self._refuse_bad_db(exc)
                raise
            self._check_schema(raw, f"prefix {self.prefix!r}")
            self._schema_checked = True
        self._used()
        return client

    def _refuse_bad_db(self, exc: StoreError) -> None:
        """A database number the server does not have is a mistake in the URL: say so (as
        unavailable, like a wrong host or a PostgreSQL database that does not exist)."""
        if "DB index is out of range" not in str(exc.__cause__):
            return
        db = urlsplit(self._driver_url).path.strip("/") or "0"
        raise StoreUnavailableError(
            f"the Redis server at {self.url} has no database {db}: the database number is out "
            "of range (a server has 16, /0 to /15, unless its `databases` setting says "
            "otherwise). Use another number in the URL, like /0, or a ?prefix= of your own."
        ) from exc.__cause__

    # --- decoding ---------------------------------------------------------------------------

    def _revision_of(self, raw: _Raw | None) -> int:
        return self._codec.revision(raw, self._k_revision)

    def _policy_of(self, raw: _Raw | None, revision: int) -> Policy:
        return self._codec.policy_text(raw, revision, self._k_policy)

    def _tenant_of(self, name: str, raw: _Raw | None) -> TenantRecord:
        return self._codec.tenant_text(name, raw, f"{self._k_tenants}[{name}]")

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

    def read_tenants(self, names: Sequence[str]) -> dict[str, TenantRecord]:
        return self._read_tenants(self._conn(), names)

    def _read_tenants(self, client: redis.Redis, names: Sequence[str]) -> dict[str, TenantRecord]:
        # One HMGET for a whole batch (registrations, ratchet marks, a router's re-read).
        if not names:
            return {}
        with self._errors(f"reading {len(names)} tenants"):
            raw = client.hmget(self._k_tenants, list(names))
        return {name: self._tenant_of(name, value) for name, value in zip(names, raw, strict=True)}

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
                raise self._codec.corrupt(self._k_tenants, f"tenant name {key!r}", exc) from exc
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
        return [self._codec.audit_text(item, key) for item in reversed(raw)]

    # --- writes -----------------------------------------------------------------------------

    def commit(self, change: ChangeFn, actor: str) -> int:
        client = self._conn()
        deadline = time.monotonic() + 5 * self.timeout
        attempt = 0
        while True:
            attempt += 1
            with self._errors("reading the state to change"):
                raw_revision, raw_schema, raw_policy = self._get(
                    client, self._k_revision, self._k_schema, self._k_policy
                )
            self._check_schema(raw_schema, f"prefix {self.prefix!r}")
            revision = self._revision_of(raw_revision)
            policy = self._policy_of(raw_policy, revision)
            reader = FunctionReader(
                policy,
                functools.partial(self._read_tenant, client),
                functools.partial(self._read_tenants, client),
            )
            mutation = change(reader)
            if not mutation:
                return revision
            new = revision + 1
            keys = [self._k_revision, self._k_schema, self._k_policy, self._k_tenants]
            keys.append(self._k_audit)
            args: list[str | int] = [revision, new, SCHEMA_VERSION, self.channel]
            args.append("" if mutation.policy is None else encode_policy(mutation.policy))
            args.append(len(mutation.tenants))
            for name, record in mutation.tenants.items():
                args += [name, "" if record.is_empty() else encode_tenant(record)]
            for entry in mutation.audit(new, actor, self.clock.time()):
                index = 0
                if entry.tenant is not None:
                    keys.append(f"{self._k_audit}:{entry.tenant}")
                    index = len(keys)
                args += [encode_audit(entry), index]
            with self._errors("writing a change"):
                result = self._run_commit(client, keys, args)
            status = result[0] if isinstance(result, list) and result else None
            if status == b"ok":
                return new
            if status == b"wrongtype":
                key, kind, want = (part.decode(errors="replace") for part in result[1:4])
                raise self._codec.corrupt(key, f"a Redis {kind} where a {want} belongs")
            if status == b"schema":
                self._check_schema(result[1], f"prefix {self.prefix!r}")
            if status != b"conflict":
                raise StoreError(f"unexpected reply {result!r} from the Redis store at {self.url}")
            if time.monotonic() > deadline:
                raise StoreError(
                    f"gave up writing to the Redis store at {self.url} after {attempt} attempts: "
                    "other writers kept changing the state first. Retry the change."
                )
            # Another writer committed first: re-run the change on fresh state, after a short
            # randomised pause so that competing writers spread out.
            time.sleep(attempt_delay(attempt))

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

"""The Redis sink: signals in one hash per minute, tickets in a hash, under the store's prefix.

Keys (``{p}`` is the store's prefix, ``cohortroute:`` by default)::

    {p}signals:{minute}    hash   "{version}\\x1f{tenant}\\x1f{column}" -> counter (HINCRBY)
    {p}signals:minutes     zset   the minutes that have a hash, scored by minute
    {p}tickets             hash   "{source}\\x1f{external_id}" -> ticket JSON (HSETNX: dedupe)
    {p}tickets:at          zset   the same ids, scored by the time the ticket was opened

Each :meth:`RedisSink.add` is one Lua script call doing ``HINCRBY`` / ``HINCRBYFLOAT`` for the
non-zero counters (a pipeline of single commands costs the client several microseconds per
counter: 100k rows took 36 s), so it is applied whole or not at all and commutes with every
other writer's. Every key gets a TTL of the retention, refreshed by each write; :meth:`prune`
deletes older minutes sooner. The client is the sink's own, from the store's URL, created in the
process that uses it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Sequence
from typing import Any

from ... import _forksafe
from ...errors import StoreUnavailableError
from .._rows import COLUMNS, CPU, DURATION, FLOAT_COLUMNS, ZERO, to_row, values
from ..model import SignalRow, Ticket

log = logging.getLogger(__name__)

_SEP = "\x1f"

# One batch of rows in one call, applied whole: Redis runs a script atomically. ARGV[3] holds
# the rows, one a line: "minute\x1fversion\x1ftenant\x1f" then the counters in COLUMNS order,
# comma-separated (one string: packing one argument per row cost the client more than the
# server's work). Only non-zero counters are incremented, the seconds with HINCRBYFLOAT.
# KEYS[1]: the minutes zset. ARGV: TTL, the minute keys' prefix, the rows.
_ADD = """
local ttl, prefix = tonumber(ARGV[1]), ARGV[2]
local seen = {}
for line in string.gmatch(ARGV[3], '[^\\n]+') do
  local minute, base, counts = string.match(line, '^(%d+)\\31([^\\31]*\\31[^\\31]*\\31)(.*)$')
  local key = prefix .. minute
  local column = 0
  for value in string.gmatch(counts, '[^,]+') do
    if tonumber(value) ~= 0 then
      if column == DURATION_COLUMN or column == CPU_COLUMN then
        redis.call('HINCRBYFLOAT', key, base .. column, value)
      else
        redis.call('HINCRBY', key, base .. column, value)
      end
    end
    column = column + 1
  end
  if not seen[minute] then
    seen[minute] = true
    redis.call('EXPIRE', key, ttl)
    redis.call('ZADD', KEYS[1], minute, minute)
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
""".replace("DURATION_COLUMN", str(DURATION)).replace("CPU_COLUMN", str(CPU))
_FLOAT_FIELDS = frozenset(str(i) for i in FLOAT_COLUMNS)
#: At most this many tenants asked for: their fields are matched by the server (HSCAN).
SCAN_TENANTS = 8
#: The fields HSCAN looks at per call.
SCAN_COUNT = 10_000


class RedisSink:
    """Signals and tickets in Redis, under ``prefix``; ``pool`` makes the client's connections."""

    def __init__(self, make_client: Any, prefix: str, *, retention_seconds: float, where: str):
        self._make_client = make_client
        self.prefix = prefix
        self._where = where
        self._ttl = max(1, math.ceil(retention_seconds))
        self._client: Any = None
        self._scripts: dict[int, Any] = {}
        self._pid = _forksafe.pid()
        self._minutes = f"{prefix}signals:minutes"
        self._tickets = f"{prefix}tickets"
        self._tickets_at = f"{prefix}tickets:at"

    def __repr__(self) -> str:
        return f"<RedisSink {self._where} prefix={self.prefix!r}>"

    def _conn(self) -> Any:
        if self._client is None or self._pid != _forksafe.pid():
            # A client inherited through fork is dropped, not closed: redis-py's pool notices the
            # new process and opens its own connections.
            self._client = self._make_client()
            self._scripts = {}
            self._pid = _forksafe.pid()
        return self._client

    def _run(self, doing: str, work: Any) -> Any:
        try:
            return work(self._conn())
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "redis":
                raise
            raise StoreUnavailableError(f"cannot {doing} in Redis at {self._where}: {exc}") from exc

    def _key(self, minute: int) -> str:
        return f"{self.prefix}signals:{minute}"

    def add(self, rows: Sequence[SignalRow]) -> None:
        if not rows:
            return
        lines = "\n".join(
            f"{row.minute}{_SEP}{row.version}{_SEP}{row.tenant}{_SEP}"
            + ",".join(map(repr, values(row)))
            for row in rows
        )
        args = [self._ttl, f"{self.prefix}signals:", lines]

        def work(client: Any) -> None:
            script = self._scripts.get(id(client))
            if script is None:
                script = self._scripts[id(client)] = client.register_script(_ADD)
            script(keys=[self._minutes], args=args, client=client)

        self._run("add signal rows", work)

    def rows(
        self,
        since_minute: int,
        until_minute: int | None = None,
        versions: Collection[str] | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[SignalRow]:
        high = "+inf" if until_minute is None else f"({until_minute}"
        # a few tenants (a ticket's attribution, "has the store seen this tenant"): the server
        # picks their fields out of each minute's hash, instead of sending every tenant's
        patterns = (
            None
            if tenants is None or len(set(tenants)) > SCAN_TENANTS
            else [f"*{_SEP}{_glob(t)}{_SEP}*" for t in sorted(set(tenants))]
        )

        def work(client: Any) -> list[tuple[int, dict[bytes, bytes]]]:
            minutes = [int(m) for m in client.zrangebyscore(self._minutes, since_minute, high)]
            if patterns is not None:
                return _scan(client, [(self._key(m), m) for m in minutes], patterns)
            pipe = client.pipeline(transaction=False)
            for minute in minutes:
                pipe.hgetall(self._key(minute))
            return list(zip(minutes, pipe.execute(), strict=True))

        version_set = None if versions is None else set(versions)
        tenant_set = None if tenants is None else set(tenants)
        found: list[SignalRow] = []
        for minute, fields in self._run("read signal rows", work):
            counters: dict[tuple[str, str], list[float]] = {}
            for raw, number in fields.items():
                version, tenant, column = raw.decode().split(_SEP)
                if (version_set is not None and version not in version_set) or (
                    tenant_set is not None and tenant not in tenant_set
                ):
                    continue
                row = counters.get((tenant, version))
                if row is None:
                    row = counters[(tenant, version)] = ZERO.copy()
                text = number.decode()
                row[int(column)] = float(text) if column in _FLOAT_FIELDS else int(text)
            found.extend(to_row(minute, t, v, row) for (t, v), row in sorted(counters.items()))
        return found

    def add_ticket(self, ticket: Ticket) -> bool:
        ident = f"{ticket.source}{_SEP}{ticket.external_id}"
        text = json.dumps([ticket.tenant, ticket.severity, ticket.at, ticket.version, ticket.text])

        def work(client: Any) -> bool:
            pipe = client.pipeline(transaction=True)
            pipe.hsetnx(self._tickets, ident, text)
            pipe.zadd(self._tickets_at, {ident: ticket.at}, nx=True)
            pipe.expire(self._tickets, self._ttl)
            pipe.expire(self._tickets_at, self._ttl)
            return bool(pipe.execute()[0])

        added: bool = self._run("add a ticket", work)
        return added

    def tickets(self, since: float, until: float | None = None) -> list[Ticket]:
        high = "+inf" if until is None else f"({until!r}"

        def work(client: Any) -> list[tuple[bytes, bytes | None]]:
            idents = client.zrangebyscore(self._tickets_at, since, high)
            if not idents:
                return []
            return list(zip(idents, client.hmget(self._tickets, idents), strict=True))

        found = []
        for ident, text in self._run("read tickets", work):
            if text is None:
                continue  # expired between the two reads
            source, external_id = ident.decode().split(_SEP, 1)
            tenant, severity, at, version, body = json.loads(text)
            found.append(Ticket(tenant, source, external_id, severity, float(at), version, body))
        return sorted(found, key=lambda t: (t.at, t.source, t.external_id))

    def prune(self, before_minute: int) -> int:
        def work(client: Any) -> int:
            minutes = client.zrangebyscore(self._minutes, "-inf", f"({before_minute}")
            idents = client.zrangebyscore(self._tickets_at, "-inf", f"({before_minute * 60.0!r}")
            pipe = client.pipeline(transaction=True)
            for minute in minutes:
                pipe.delete(self._key(int(minute)))
            pipe.zremrangebyscore(self._minutes, "-inf", f"({before_minute}")
            if idents:
                pipe.hdel(self._tickets, *idents)
                pipe.zrem(self._tickets_at, *idents)
            pipe.execute()
            return len(minutes) + len(idents)

        pruned: int = self._run("prune signal rows", work)
        return pruned

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == _forksafe.pid():
            client.close()


def _glob(text: str) -> str:
    """``text`` matched literally in a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _scan(
    client: Any, keys: list[tuple[str, int]], patterns: list[str]
) -> list[tuple[int, dict[bytes, bytes]]]:
    """The fields of each minute's hash matching one of ``patterns`` (HSCAN ... MATCH, every
    cursor followed to its end; pipelined across the minutes)."""
    found: dict[int, dict[bytes, bytes]] = {minute: {} for _, minute in keys}
    pending = [(key, minute, pattern, 0) for key, minute in keys for pattern in patterns]
    while pending:
        pipe = client.pipeline(transaction=False)
        for key, _, pattern, cursor in pending:
            pipe.hscan(key, cursor, match=pattern, count=SCAN_COUNT)
        following = []
        for (key, minute, pattern, _), (cursor, fields) in zip(
            pending, pipe.execute(), strict=True
        ):
            found[minute].update(fields)
            if int(cursor):
                following.append((key, minute, pattern, int(cursor)))
        pending = following
    return list(found.items())


__all__ = ["COLUMNS", "RedisSink"]

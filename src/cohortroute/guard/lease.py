"""One guard at a time across the fleet: a lease kept in the store's policy.

The lease is a small object ``{"holder", "until", "since"}`` in the policy's ``version_info``
table under the key :data:`KEY`, which no version can use (a version name starts with a letter
or digit), so stores, their codecs and older releases read it as information about nothing.
Taking, renewing and giving it up are change functions committed through
:meth:`Store.write <cohortroute.store.base.Store.write>`, so every backend runs them in one
atomic transaction and the audit log shows who held it when. A guard renews only when less than
half of its term is left, so a guard checking every minute writes about once per half term.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, replace
from typing import Any

from ..changes import ChangeFn, Mutation, StateReader
from ..store.base import Store

log = logging.getLogger(__name__)

KEY = "~guard"
"""Where the lease lives in ``Policy.version_info``."""


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds the guard's lease, and until when (Unix time)."""

    holder: str
    until: float
    since: float

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"holder": self.holder, "until": self.until, "since": self.since}


def default_holder() -> str:
    """``host:pid``: this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def current(store: Store) -> LeaseInfo | None:
    """The lease as stored (it may have expired), or None."""
    return _read(store.policy().version_info.get(KEY))


def _read(data: Any) -> LeaseInfo | None:
    try:
        return LeaseInfo(str(data["holder"]), float(data["until"]), float(data["since"]))
    except (TypeError, KeyError, ValueError):
        return None


def take(holder: str, ttl: float, now: float) -> ChangeFn:
    """Take or renew the lease until ``now + ttl``, unless another holder's is still valid.

    Writes nothing while this holder's lease has more than half its term left.
    """

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        held = _read(policy.version_info.get(KEY))
        m = Mutation()
        if held is not None and held.holder != holder and held.until > now:
            return m
        if held is not None and held.holder == holder and held.until - now > ttl / 2:
            return m
        since = held.since if held is not None and held.holder == holder else now
        lease = LeaseInfo(holder, now + ttl, since)
        action = "guard-lease-renew" if since != now else "guard-lease-take"
        m.record(action, None, None if held is None else held.to_json(), lease.to_json())
        m.policy = replace(policy, version_info={**policy.version_info, KEY: lease.to_json()})
        return m

    return change


def give_up(holder: str) -> ChangeFn:
    """Release the lease if ``holder`` has it (``guard --once`` ends with this)."""

    def change(state: StateReader) -> Mutation:
        policy = state.policy()
        held = _read(policy.version_info.get(KEY))
        m = Mutation()
        if held is not None and held.holder == holder:
            table = {k: v for k, v in policy.version_info.items() if k != KEY}
            m.record("guard-lease-release", None, held.to_json(), None)
            m.policy = replace(policy, version_info=table)
        return m

    return change


def acquire(store: Store, holder: str, ttl: float, now: float) -> bool:
    """Take or renew the lease; True when ``holder`` has it afterwards."""
    store.write(take(holder, ttl, now), actor="guard")
    held = current(store)
    return held is not None and held.holder == holder and held.until > now


def release(store: Store, holder: str) -> None:
    """Give the lease up if ``holder`` has it."""
    store.write(give_up(holder), actor="guard")

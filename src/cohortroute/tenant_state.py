"""The typed parts of a tenant's state: its data migration and the runner's lease.

A tenant record's ``state`` is stored as plain JSON (``state["migration"]``,
``state["lease"]``); these frozen records read and write exactly those shapes, so what every
store already holds stays readable. :class:`~cohortroute.policy.TenantRecord` offers them as
``record.migration`` and ``record.lease``; both are also importable from
:mod:`cohortroute.policy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Lease", "MigrationState", "MigrationStatus"]

MigrationStatus = Literal["migrating", "ok", "failed", "broken"]


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


LEASE_RENEWED_ACTION = "migration-lease"
"""The audit action of a migration runner extending its lease on a tenant: it changes no
decision (the tenant stays ``migrating`` either way), so routers keep their caches for it."""


@dataclass(frozen=True, slots=True)
class Lease:
    """``state["lease"]``: which runner owns a tenant's migration, and until when (Unix time).

    A lease past ``expires`` is free: a killed runner's tenants free themselves. ``generation``
    is the *fencing token*: it goes up by one each time a runner takes the tenant, and is kept
    when the lease is released (``owner`` empty), so a runner that lost its lease while paused
    can be told apart from the one that holds it now, by the store and by the app's own writes.
    """

    owner: str
    expires: float
    generation: int = 0

    def held_at(self, now: float) -> bool:
        """True while the lease is still valid at ``now``."""
        return bool(self.owner) and self.expires > now

    def released(self) -> Lease:
        """The lease once its runner is done: nobody holds it, the generation stays."""
        return Lease("", 0.0, self.generation)

    def to_json(self) -> dict[str, Any]:
        """The stored shape: ``{"owner": ..., "expires": ..., "generation": ...}``."""
        return {"owner": self.owner, "expires": self.expires, "generation": self.generation}

    @classmethod
    def from_json(cls, data: object) -> Lease | None:
        """Inverse of :meth:`to_json`; None for a missing (or unreadable) lease.

        A lease whose expiry cannot be read counts as expired, so it never blocks a tenant; a
        lease stored before generations existed is generation 0.
        """
        if not isinstance(data, Mapping):
            return None
        generation = data.get("generation")
        if isinstance(generation, bool) or not isinstance(generation, int):
            generation = 0
        owner = data.get("owner")
        return cls(
            "" if owner is None else str(owner),
            _float_or_none(data.get("expires")) or 0.0,
            generation,
        )


@dataclass(frozen=True, slots=True)
class MigrationState:
    """``state["migration"]``: the last or current migration of a tenant's data.

    ``status`` is ``migrating`` while the runner holds the tenant, then ``ok``, ``failed``
    (the data was restored) or ``broken`` (restoring failed too). ``steps`` and ``hold`` are
    kept while migrating so a resumed run knows what it was doing; ``finished`` and ``error``
    once it ended. ``fenced`` marks a tenant broken because a step finished after its runner
    had lost the lease: nobody vouches for its data, so only an explicit retry resumes it. The
    stored shape is the one every store already holds (``fenced`` only when set).
    """

    status: str | None
    from_version: str | None = None
    to_version: str | None = None
    started: float | None = None
    finished: float | None = None
    steps: tuple[str, ...] = ()
    hold: str | None = None
    error: str | None = None
    fenced: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, to the millisecond; None while it runs."""
        if self.started is None or self.finished is None:
            return None
        return round(self.finished - self.started, 3)

    def to_json(self) -> dict[str, Any]:
        """The stored shape (``from``/``to``, timings; steps and hold while migrating)."""
        data: dict[str, Any] = {
            "status": self.status,
            "from": self.from_version,
            "to": self.to_version,
            "started": self.started,
        }
        if self.status == "migrating":
            data["steps"] = list(self.steps)
            data["hold"] = self.hold
        if self.finished is not None:
            data["finished"] = self.finished
            data["duration"] = self.duration
        if self.error is not None:
            data["error"] = self.error
        if self.fenced:
            data["fenced"] = True
        return data

    @classmethod
    def from_json(cls, data: object) -> MigrationState | None:
        """Inverse of :meth:`to_json`; None when there is no migration (or not a mapping)."""
        if not isinstance(data, Mapping):
            return None
        status = data.get("status")
        steps = data.get("steps")
        return cls(
            status=status if isinstance(status, str) else None,
            from_version=_str_or_none(data.get("from")),
            to_version=_str_or_none(data.get("to")),
            started=_float_or_none(data.get("started")),
            finished=_float_or_none(data.get("finished")),
            steps=tuple(str(s) for s in steps) if isinstance(steps, list | tuple) else (),
            hold=_str_or_none(data.get("hold")),
            error=_str_or_none(data.get("error")),
            fenced=data.get("fenced") is True,
        )

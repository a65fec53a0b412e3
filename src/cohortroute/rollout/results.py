"""What the controller's verbs answer: one tenant's outcome, a batch's, a percent change, and
a preview.

Plain frozen records with ``to_json()`` for ``--json`` output and ``summary()`` for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..policy import Rollout, format_percent, percent_to_output

Outcome = Literal["moved", "unchanged", "busy", "failed", "broken", "refused", "skipped"]
FAILED_OUTCOMES = frozenset({"failed", "broken", "refused"})


@dataclass(frozen=True, slots=True)
class TenantResult:
    """What happened to one tenant in a run: ``outcome``, from -> to, error and duration."""

    tenant: str
    outcome: Outcome
    from_version: str | None = None
    to_version: str | None = None
    error: str | None = None
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        """True when this tenant did not reach where it was asked to go."""
        return self.outcome in FAILED_OUTCOMES

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` output."""
        return {
            "tenant": self.tenant,
            "outcome": self.outcome,
            "from": self.from_version,
            "to": self.to_version,
            "error": self.error,
            "duration": round(self.duration, 3),
        }


@dataclass
class RunResult:
    """The outcome of a batch (``run``, ``rollback``, ``finalize``): per tenant, and overall.

    ``ok`` is False when any tenant failed or the operation could not complete; ``summary()``
    is the text an operator reads.
    """

    action: str
    results: list[TenantResult] = field(default_factory=list)
    halted: str | None = None
    completed: bool = True
    note: str = ""

    def _having(self, *outcomes: str) -> list[TenantResult]:
        return [r for r in self.results if r.outcome in outcomes]

    @property
    def moved(self) -> list[str]:
        """Tenants that moved (their data migrated and flipped, or moved back)."""
        return [r.tenant for r in self._having("moved")]

    @property
    def failures(self) -> list[TenantResult]:
        """Tenants that failed (stayed where they were, or broken), with their errors."""
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        """True when nothing failed and the operation completed."""
        return self.completed and not self.failures

    def summary(self) -> str:
        """A few lines for people: counts, each failure with its error, and what to do next."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        parts = [f"{n} {outcome}" for outcome, n in sorted(counts.items())] or ["no tenant to move"]
        lines = [f"{self.action}: {', '.join(parts)}" + (" -- FAILED" if not self.ok else "")]
        for r in self.failures:
            move = (
                f" ({r.from_version} -> {r.to_version})"
                if r.from_version is not None or r.to_version is not None
                else ""
            )
            lines.append(f"  {r.tenant}: {r.outcome}{move}: {r.error}")
        if self.halted:
            lines.append(f"  the rollout was halted: {self.halted}")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` output."""
        return {
            "action": self.action,
            "ok": self.ok,
            "completed": self.completed,
            "halted": self.halted,
            "note": self.note,
            "moved": self.moved,
            "failed": [r.to_json() for r in self.failures],
            "results": [r.to_json() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class Preview:
    """Exactly which registered tenants move when the rollout goes to ``to_percent``.

    ``moves`` are the tenants whose version changes (sorted), with ``migrate`` the subset whose
    data needs a migration first (gated rollouts: they move when ``run`` migrates them).
    ``stays`` lists tenants whose bucket enters (or, lowering, leaves) the new range but who do
    not move, and why (pinned, tagged, rolled back, kept by the ratchet); ``kept`` the subset
    the ratchet keeps on the candidate when lowering.
    """

    candidate: str
    default: str
    from_percent: int
    to_percent: int
    step: int | None
    moves: tuple[str, ...]
    migrate: tuple[str, ...]
    stays: Mapping[str, str]
    considered: int
    kept: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """How many tenants move."""
        return len(self.moves)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``rollout preview --json``."""
        return {
            "candidate": self.candidate,
            "default": self.default,
            "from_percent": percent_to_output(self.from_percent),
            "to_percent": percent_to_output(self.to_percent),
            "step": self.step,
            "count": self.count,
            "moves": list(self.moves),
            "migrate": list(self.migrate),
            "stays": dict(self.stays),
            "kept": list(self.kept),
            "considered": self.considered,
        }

    def summary(self) -> list[str]:
        """The lines ``rollout preview`` prints: who moves, who the ratchet keeps, who stays."""
        lines = [
            f"{format_percent(self.from_percent)} -> {format_percent(self.to_percent)}: "
            f"{self.count} of {self.considered} registered tenants move"
        ]
        if self.migrate:
            lines.append(f"  ({len(self.migrate)} of them once `rollout run` migrated their data)")
        lines.extend(f"  {name}" for name in self.moves)
        if self.kept:
            lines.append(
                f"{len(self.kept)} kept on {self.candidate} by the ratchet (only a rollback "
                "moves them back):"
            )
            lines.extend(f"  {name}" for name in self.kept)
        others = sorted((n, why) for n, why in self.stays.items() if n not in set(self.kept))
        if others:
            lines.append("not moving although their bucket is in range:")
            lines.extend(f"  {name}: {why}" for name, why in others)
        return lines


@dataclass(frozen=True, slots=True)
class PercentChange:
    """What ``set`` did: the rollout as it stands now, where it was, and who that moved.

    ``moved`` lists the registered tenants a raise moved to the candidate (a gated rollout moves
    them later, as ``run`` migrates them); ``kept`` counts the registered tenants a lowering
    left on the candidate by the ratchet, although the new percentage no longer reaches them.
    """

    rollout: Rollout
    from_percent: int
    kept: int = 0
    moved: tuple[str, ...] = ()

    def ratchet_note(self) -> str | None:
        """What the ratchet did when lowering (None when the percentage did not go down)."""
        if self.rollout.percent >= self.from_percent:
            return None
        return (
            f"the ratchet kept {self.kept} tenant(s) on {self.rollout.candidate} that "
            f"{format_percent(self.rollout.percent)} no longer reaches (only a rollback moves "
            "them back)"
        )

    def summary(self) -> str:
        """One line for people: where the rollout is, and who that moved or the ratchet kept."""
        candidate, to = self.rollout.candidate, format_percent(self.rollout.percent)
        if self.rollout.percent == self.from_percent:
            return f"the rollout of {candidate} is already at {to}"
        text = (
            f"the rollout of {candidate} is now at {to} (was {format_percent(self.from_percent)})"
        )
        note = self.ratchet_note()
        if note is not None:
            return f"{text}; {note}"
        return f"{text}; {len(self.moved)} registered tenant(s) moved to {candidate}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` output (percentages as numbers of percent)."""
        return {
            "candidate": self.rollout.candidate,
            "from_percent": percent_to_output(self.from_percent),
            "to_percent": percent_to_output(self.rollout.percent),
            "kept": self.kept,
            "moved": list(self.moved),
        }

"""From the sink and the store to the evidence: which rollout, whose baseline, which minutes.

:func:`assess` reads the signal rows and tickets of one rollout (the running one, or the last
one that ended, for the report) and feeds :class:`~.evidence.Evidence` minute by minute:

* a tenant's **baseline** is its rows on the stable version (the default) in the
  ``baseline_minutes`` before the rollout started, and its tickets then;
* from the rollout's start, rows on the **stable** version form the stable cohort of each
  minute, rows on the **candidate** are the candidate tenants' evidence;
* a request counts as **slow** when it falls above the tenant's baseline p95 bucket of the
  duration histogram (the global one for a tenant with little history).

Reads only: acting on the verdict is :mod:`.actions`' job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..decision import Reason
from ..explain import decide_for
from ..policy import AuditEntry, Policy, Rollout, TenantRecord, rollout_from_json
from ..signals.model import OVERFLOW_TENANT, SignalRow, SignalSink, Ticket
from ..store.base import Store
from .evidence import Baselines, Counts, Evidence, TenantHistory
from .verdict import GuardConfig, Verdict, judge

log = logging.getLogger(__name__)

MIN_OWN_HISTOGRAM = 200
"""Requests a tenant needs on the stable version before its own p95 bucket is trusted."""

BLIND_AFTER = 120.0
"""Seconds a rollout runs without a single signal row (either version) before the guard says
it is blind: routers flush every few seconds, so two minutes of nothing means no signals."""


@dataclass(frozen=True)
class Subject:
    """The rollout under judgement: running, or how the last one ended."""

    rollout: Rollout
    stable: str
    ended: str | None = None  # "rolled back" / "finalized"
    ended_at: float | None = None
    ended_by: str | None = None  # the actor of the ending entry


@dataclass
class TenantSignals:
    """What one tenant did on one version since the rollout started (for the report)."""

    requests: int = 0
    errors: int = 0
    slow: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * 15)
    tickets: int = 0


@dataclass
class Assessment:
    """One look at a rollout: its evidence, the verdict, and the raw signals per version."""

    subject: Subject
    now: float
    evidence: Evidence
    verdict: Verdict
    held: frozenset[str]
    signals: dict[str, dict[str, TenantSignals]]  # version -> tenant -> signals
    slow_buckets: dict[str, int]
    pinned: frozenset[str] = frozenset()  # on the candidate by a pin or tag rule, not the rollout
    blind: bool = False  # no signal rows at all since the rollout started (signals off)


def find_subject(store: Store, history_limit: int = 5000) -> Subject | None:
    """The running rollout, else the last one that ended (from the audit log), else None."""
    policy = store.policy()
    if policy.rollout is not None:
        return Subject(policy.rollout, policy.default or "")
    ended: AuditEntry | None = None
    for entry in store.history(None, history_limit):
        if entry.tenant is not None:
            continue
        if entry.action in ("rollout-rollback", "rollout-finalize") and ended is None:
            ended = entry
        elif entry.action == "rollout-start" and ended is not None:
            rollout = rollout_from_json(entry.after)
            if rollout is None:
                return None
            # the rollout as recorded when it ended (not rebuilt from its start and the clock)
            last = _recorded(ended.before)
            if last is not None and last.salt == rollout.salt:
                rollout = replace(last.at(ended.at), auto=False)
            rolled_back = ended.action == "rollout-rollback"
            stable = policy.default or "" if rolled_back else _previous_default(store, ended)
            how = "rolled back" if rolled_back else "finalized"
            return Subject(rollout, stable, how, ended.at, ended.actor)
    return None


def _recorded(before: object) -> Rollout | None:
    """The rollout in an ending entry's ``before`` (a policy or a rollout, as JSON)."""
    if not isinstance(before, dict):
        return None
    data = before.get("rollout", before)
    try:
        return rollout_from_json(data) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _previous_default(store: Store, ended: AuditEntry) -> str:
    for entry in store.history(None, 5000):
        if entry.action == "set-default" and entry.revision <= ended.revision:
            return str(entry.before or "")
    return ""


def assess(
    store: Store,
    sink: SignalSink,
    config: GuardConfig,
    now: float,
    subject: Subject | None = None,
) -> Assessment | None:
    """Read the rollout's signals and judge them; None when there is no rollout to look at."""
    subject = subject or find_subject(store)
    if subject is None:
        return None
    rollout = subject.rollout
    start = int(rollout.started_at // 60)
    since = start - config.baseline_minutes
    versions = {subject.stable, rollout.candidate}
    every_row = sink.rows(since, versions=versions)
    rows = [r for r in every_row if r.tenant]
    blind = (
        subject.ended is None
        and now - rollout.started_at >= BLIND_AFTER
        and not any(r.minute >= start for r in every_row)
    )
    tickets = [t for t in sink.tickets(since * 60.0) if t.version in versions]
    if subject.ended_at is not None:
        last = int(subject.ended_at // 60)
        rows = [r for r in rows if r.minute <= last]
        tickets = [t for t in tickets if t.at <= subject.ended_at]
        if subject.ended == "finalized":
            rows = _without_newcomers(rows, rollout.candidate, start, last)
    before = [r for r in rows if r.minute < start and r.version == subject.stable]
    buckets = slow_buckets(before)
    global_bucket = buckets.pop("", 14)
    pre_tickets = [t for t in tickets if t.at < rollout.started_at and t.version == subject.stable]
    baselines = Baselines(_histories(before, pre_tickets, buckets, global_bucket), k=config.shrink)
    evidence = Evidence(baselines)
    by_minute: dict[int, list[tuple[bool, str, int, Counts]]] = defaultdict(list)
    signals: dict[str, dict[str, TenantSignals]] = {v: defaultdict(TenantSignals) for v in versions}
    for r in rows:
        if r.minute < start:
            continue
        b = buckets.get(r.tenant, global_bucket)
        slow = sum(r.histogram[b + 1 :])
        by_minute[r.minute].append(
            (r.version == rollout.candidate, r.tenant, r.requests, (r.status[4], slow, 0))
        )
        _add(signals[r.version][r.tenant], r, slow)
    for t in tickets:
        if t.at >= rollout.started_at:
            by_minute[int(t.at // 60)].append(
                (t.version == rollout.candidate, t.tenant, 0, (0, 0, 1))
            )
            signals[t.version][t.tenant].tickets += 1
    for minute in sorted(by_minute):
        stable: dict[str, tuple[int, Counts]] = {}
        candidate: dict[str, tuple[int, Counts]] = {}
        for on_candidate, tenant, requests, counts in by_minute[minute]:
            into = candidate if on_candidate else stable
            n, c = into.get(tenant, (0, (0, 0, 0)))
            into[tenant] = (n + requests, (c[0] + counts[0], c[1] + counts[1], c[2] + counts[2]))
        evidence.add_minute(minute, stable, candidate)
    names = [t for t in evidence.tenants if t != OVERFLOW_TENANT]
    held, pinned = frozenset[str](), frozenset[str]()
    if subject.ended is None:
        held, pinned = _held_and_pinned(store, rollout, names, now)
    # the overflow row sums whichever tenants overflowed a router's rows that minute: no
    # tenant of its own, no baseline of its own, so it is judged neither alone nor in the cohort
    exclude = held | pinned | {OVERFLOW_TENANT}
    verdict = replace(judge(evidence, config, exclude=exclude), pinned=tuple(sorted(pinned)))
    return Assessment(subject, now, evidence, verdict, held, signals, buckets, pinned, blind)


def _without_newcomers(
    rows: list[SignalRow], candidate: str, start: int, last: int
) -> list[SignalRow]:
    """A finalized rollout's last minute also counts every tenant served the candidate once it
    became the default: keep that minute's candidate rows only for the tenants the rollout had
    served it before."""
    before = {r.tenant for r in rows if r.version == candidate and start <= r.minute < last}
    return [
        r
        for r in rows
        if r.minute != last or r.version != candidate or r.tenant in before or start == last
    ]


def slow_buckets(rows: Iterable[SignalRow]) -> dict[str, int]:
    """Each tenant's p95 bucket of the duration histogram (``""``: all tenants together)."""
    per: dict[str, list[int]] = defaultdict(lambda: [0] * 15)
    for r in rows:
        for hist in (per[r.tenant], per[""]):
            for i, c in enumerate(r.histogram):
                hist[i] += c
    out = {}
    for tenant, hist in per.items():
        if tenant == "" or sum(hist) >= MIN_OWN_HISTOGRAM:
            out[tenant] = p95_bucket(hist)
    return out


def p95_bucket(histogram: Sequence[int], q: float = 0.95) -> int:
    """The index of the bucket holding the ``q`` quantile (the last one when empty)."""
    total = sum(histogram)
    if total <= 0:
        return len(histogram) - 1
    running = 0
    for i, c in enumerate(histogram):
        running += c
        if running >= q * total:
            return i
    return len(histogram) - 1


def _histories(
    rows: list[SignalRow], tickets: list[Ticket], buckets: dict[str, int], global_bucket: int
) -> dict[str, TenantHistory]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        s = sums[r.tenant]
        s[0] += r.requests
        s[1] += r.status[4]
        s[2] += sum(r.histogram[buckets.get(r.tenant, global_bucket) + 1 :])
    for t in tickets:
        sums[t.tenant][3] += 1
    return {t: TenantHistory(s[0], (s[1], s[2], s[3])) for t, s in sums.items()}


def _add(into: TenantSignals, row: SignalRow, slow: int) -> None:
    into.requests += row.requests
    into.errors += row.status[4]
    into.slow += slow
    for i, c in enumerate(row.histogram):
        into.histogram[i] += c


def _held_and_pinned(
    store: Store, rollout: Rollout, names: list[str], now: float
) -> tuple[frozenset[str], frozenset[str]]:
    """The candidate tenants already sent back from this rollout, and those a pin or a tag rule
    keeps on the candidate (not the rollout's tenants: it cannot move them)."""
    if not names:
        return frozenset(), frozenset()
    records = store.read_tenants(names)
    held = frozenset(n for n, r in records.items() if r.held_salt == rollout.salt)
    policy: Policy = store.policy()
    pinned = set()
    if policy.default is not None:
        for n, record in records.items():
            if n not in held and _kept(policy, record, now, rollout.candidate):
                pinned.add(n)
    return held, frozenset(pinned)


def _kept(policy: Policy, record: TenantRecord, now: float, candidate: str) -> bool:
    decision = decide_for(policy, record, now)
    return decision.version == candidate and decision.reason in (Reason.PIN, Reason.TAG)

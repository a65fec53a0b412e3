"""Presentation: what the commands print, as text for people and as ``--json`` for scripts.

Handlers gather the data; the functions here turn it into lines or JSON-ready dicts, so a
command's output can be read (and tested) apart from the store. Every percentage in JSON is a
number of percent (:func:`cohortroute.policy.percent_to_output`); every store URL shown is
redacted by the caller (:attr:`Context.shown_store`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from ..bucketing import BUCKETS
from ..explain import Explanation, Tally
from ..policy import (
    AuditEntry,
    Policy,
    Rollout,
    format_percent,
    percent_to_output,
    rollout_to_output,
    stored_rollout_to_output,
)
from ..rollout.endings import ROLLING_BACK
from ..versions import retired

if TYPE_CHECKING:
    from ..changes import ImportCounts
    from ..rollout import Preview, TenantResult
    from ..versions import VersionInfo

log = logging.getLogger(__name__)


def printable(text: str, limit: int = 200) -> str:
    """Stored text as one safe line: control characters escaped, at most ``limit`` characters.

    Actors, halt reasons and migration errors come from whoever wrote to the store: a terminal
    escape sequence or a newline in them must not drive the operator's terminal or break a
    table, and a 100 KB actor must not flood it.
    """
    escaped = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[:limit])
    if len(text) <= limit and len(escaped) <= limit:
        return escaped
    return f"{escaped[:limit]}... ({len(text)} characters)"


def when(at: float) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` in UTC (operators in several zones read it)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def describe_rollout(rollout: Rollout | None) -> str:
    """One line about the rollout: ``2026.12 at 5% (salt ..., started ... UTC)`` or ``none``.

    A bucketer other than the default ``sha256`` is named after the salt (``bucketer
    unleash``): with it the salt is the Unleash groupId, and buckets differ from sha256's.
    Give it the rollout as routers apply it now (:func:`cohortroute.explain.current_rollout`).
    """
    if rollout is None:
        return "none"
    text = f"{rollout.candidate} at {format_percent(rollout.percent)}"
    notes = [f"salt {printable(rollout.salt)}", f"started {when(rollout.started_at)} UTC"]
    if rollout.bucketer != "sha256":  # the default goes unsaid, as in the stored rollout
        notes.insert(1, f"bucketer {rollout.bucketer}")
    if rollout.plan:
        plan = " -> ".join(format_percent(p) for p in rollout.plan)
        notes.append(f"plan {plan}, step {rollout.step + 1} of {len(rollout.plan)}")
    if rollout.every is not None:
        pace = "every" if rollout.auto else "at least"
        notes.append(f"{pace} {rollout.every:g}s per step")
    if rollout.gated:
        notes.append("gated: tenants move once their data is migrated")
    if rollout.halted:
        reason = rollout.halt_reason
        notes.append(f"HALTED: {printable(reason)}" if reason else "HALTED")
    return f"{text} ({'; '.join(notes)})"


# --- status ------------------------------------------------------------------------------------


def status_json(store: str, policy: Policy, tally: Tally, now: float) -> dict[str, Any]:
    """``status --json``: ``store`` is the redacted URL."""
    return {
        "store": store,
        "revision": policy.revision,
        "default": policy.default,
        "versions": sorted(policy.versions),
        "retired": sorted(retired(policy)),
        "rules": [{"tag": tag, "version": version} for tag, version in policy.rules],
        "rollout": rollout_to_output(policy.rollout, now),
        "tenants": {
            "stored": tally.stored,
            "by_version": tally.by_version,
            "by_reason": tally.by_reason,
        },
    }


def status_text(store: str, policy: Policy, tally: Tally, rollout: Rollout | None) -> list[str]:
    """``status``: ``store`` is the redacted URL, ``rollout`` the one routers apply now."""
    versions = sorted(policy.versions)
    default = policy.default
    lines = [f"store:     {store} (revision {policy.revision})"]
    if versions:
        gone = retired(policy)
        shown = [
            f"{v} (default)" if v == default else f"{v} (retired)" if v in gone else v
            for v in versions
        ]
        lines.append(f"versions:  {', '.join(shown)}")
    else:
        lines.append(
            "versions:  none yet -- a router records the versions it mounts when it starts"
        )
    if default is not None and default not in policy.versions:
        lines.append(f"default:   {default}")
    rules = [f"{tag} -> {version}" for tag, version in policy.rules]
    lines.append(f"rules:     {', '.join(rules) if rules else 'none'}")
    lines.append(f"rollout:   {describe_rollout(rollout)}")
    lines.append(f"tenants:   {tally.stored} with a stored record (pin, tags or rollout state)")
    by_version = tally.by_version
    width = max((len(v) for v in tally.counts), default=0)
    for version, reasons in tally.counts.items():
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        row = f"           {version:<{width}}  {by_version[version]:>5}"
        lines.append(f"{row}  ({why})" if why else row)
    return lines


# --- explain -----------------------------------------------------------------------------------


def explain_json(explained: Explanation) -> dict[str, Any]:
    """``explain --json``."""
    decision, record = explained.decision, explained.record
    return {
        "tenant": explained.tenant,
        "version": decision.version,
        "reason": decision.reason.value,
        "detail": decision.detail,
        "backend": decision.backend,
        "errors": list(decision.errors),
        "bucket": decision.bucket,
        "default": explained.policy.default,
        "pin": record.pin,
        "tags": sorted(record.tags),
        "ratchet": record.ratchet,
        "rollout": rollout_to_output(explained.policy.rollout, explained.at),
        "maintenance": decision.maintenance,
        "revision": explained.policy.revision,
        "hints": explained.hints,
    }


def explain_text(explained: Explanation) -> list[str]:
    """``explain``: the decision, what it was made from, and the hints."""
    decision, record, rollout = explained.decision, explained.record, explained.rollout
    lines = [
        f"{explained.tenant} -> {decision.version} (reason: {decision.reason.value})",
        f"  why:     {decision.detail}",
    ]
    if decision.bucket is not None and rollout is not None:
        lines.append(
            f"  bucket:  {decision.bucket} of {BUCKETS} in the rollout of {rollout.candidate} "
            f"at {format_percent(rollout.percent)} (in when bucket < {rollout.percent})"
        )
    lines.append(f"  pin:     {record.pin or 'none'}")
    lines.append(f"  tags:    {', '.join(sorted(record.tags)) or 'none'}")
    if record.ratchet is not None:
        lines.append(f"  ratchet: {record.ratchet}")
    if decision.maintenance:
        lines.append("  status:  maintenance -- requests get 503 with Retry-After")
    lines.append("  to change it:")
    lines.extend(f"    - {hint}" for hint in explained.hints)
    return lines


# --- history -----------------------------------------------------------------------------------


def audit_value(action: str, value: Any) -> Any:
    """A before/after value of an audit entry for JSON: percentages in percent, as everywhere."""
    if action == "rollout-set" and isinstance(value, int) and not isinstance(value, bool):
        return percent_to_output(value)
    if _is_stored_rollout(value):
        return stored_rollout_to_output(value)
    return value


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry for ``history --json`` (``time`` is ``at`` as ISO 8601 UTC)."""
    return {
        "revision": entry.revision,
        "at": entry.at,
        "time": datetime.fromtimestamp(entry.at, timezone.utc).isoformat(timespec="seconds"),
        "actor": entry.actor,
        "action": entry.action,
        "tenant": entry.tenant,
        "before": audit_value(entry.action, entry.before),
        "after": audit_value(entry.action, entry.after),
    }


def history_table(entries: Sequence[AuditEntry]) -> list[str]:
    """``history``: one row per entry, columns aligned, the change last."""
    rows = [("REV", "TIME (UTC)", "ACTOR", "ACTION", "TENANT", "CHANGE")]
    for e in entries:
        change = printable(f"{_show(e.action, e.before)} => {_show(e.action, e.after)}")
        actor, action = printable(e.actor, 40), printable(e.action, 40)
        rows.append((str(e.revision), when(e.at), actor, action, e.tenant or "-", change))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(5)), row[5]]).rstrip() for row in rows
    ]


def _is_stored_rollout(value: Any) -> bool:
    return isinstance(value, dict) and "candidate" in value and "percent" in value


def _show(action: str, value: Any) -> str:
    """A before/after value of an audit entry, short enough for one table row."""
    if value is None:
        return "-"
    if action == "rollout-set" and isinstance(value, int):
        return format_percent(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if value else "(none)"
    if _is_stored_rollout(value):
        text = f"{value['candidate']} at {format_percent(int(value['percent']))}"
        return text + (" (halted)" if value.get("halted") else "")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def versions_table(listed: Sequence[VersionInfo]) -> list[str]:
    """``versions``: one row per version, its state, last mount and what names it."""
    rows = [("VERSION", "STATE", "LAST MOUNTED (UTC)", "WHERE", "NAMED BY")]
    for info in listed:
        state = "retired" if info.retired else "default" if info.default else "in service"
        mounted = when(info.mounted_at) if info.mounted_at is not None else "-"
        where = "-"
        if info.mounted_host is not None:
            where = printable(info.mounted_host, 60) + (
                f" (pid {info.mounted_pid})" if info.mounted_pid is not None else ""
            )
        rows.append((info.version, state, mounted, where, ", ".join(info.uses) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]).rstrip() for row in rows
    ]


def import_summary(counts: ImportCounts) -> str:
    """``tenants import``: ``imported 2 new tenants; tags changed on 3 (4 added, 1 removed)``."""
    text = f"imported {len(counts.new)} new tenants"
    if counts.retagged:
        text += (
            f"; tags changed on {len(counts.retagged)} "
            f"({counts.tags_added} added, {counts.tags_removed} removed)"
        )
    return text


# --- the rollout controller ----------------------------------------------------------------------


def rollout_status_json(status: dict[str, Any], policy: Policy, now: float) -> dict[str, Any]:
    """``rollout status --json``: :meth:`RolloutController.status` with the rollout object."""
    return {
        "default": status["default"],
        "rollout": rollout_to_output(policy.rollout, now),
        "tenants": status["tenants"],
        "failed": status["failed"],
        "migrating": status["migrating"],
    }


def rollout_status_text(
    status: dict[str, Any], policy: Policy, now: float, command: str
) -> list[str]:
    """``rollout status``: the rollout, tenants per state, failed migrations and what to do."""
    rollout = None if policy.rollout is None else policy.rollout.at(now)
    counts = status["tenants"]
    lines = [f"rollout:   {describe_rollout(rollout)}", f"default:   {status['default']}"]
    lines.append(
        f"tenants:   {counts['registered']} registered, {counts['migrated']} migrated, "
        f"{counts['migrating']} migrating, {counts['ratchet']} kept by the ratchet, "
        f"{counts['held']} rolled back"
    )
    migrating: dict[str, dict[str, Any]] = status["migrating"]
    if migrating:
        lines.append(f"migrating: {len(migrating)} tenant(s), answered 503 until done")
        for name, lease in sorted(migrating.items())[:20]:
            held = (
                f"by {printable(lease['owner'])}, lease until {when(lease['expires'])} UTC"
                if lease["owner"] and isinstance(lease["expires"], int | float)
                else "no runner holds it"
            )
            lines.append(f"  {name}: {held}")
        if len(migrating) > 20:
            lines.append(f"  ... and {len(migrating) - 20} more (--json lists them all)")
        lines.append(
            f"  a runner that stopped leaves them so: `{command} rollout run --app ...` resumes "
            "them once their lease has expired"
        )
    failed: dict[str, str] = status["failed"]
    if failed:
        lines.append(f"failed:    {len(failed)} tenant(s)")
        lines.extend(f"  {name}: {printable(why)}" for name, why in sorted(failed.items())[:20])
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (--json lists them all)")
    rolling_back = rollout is not None and rollout.halted and rollout.halt_reason == ROLLING_BACK
    if failed and rolling_back:
        lines.append(
            f"  the rollback stopped on them: fix their downgrades, then `{command} rollout "
            "rollback --app ...` again (`--tenant T --force` moves one back leaving its data)"
        )
    elif failed:
        lines.append(f"  `{command} rollout run --retry-failed --app ...` retries them")
    if rollout is None:
        lines.append(f"start one with `{command} rollout start VERSION`")
    elif rolling_back:
        lines.append(f"being rolled back: `{command} rollout rollback --app ...` finishes it")
    elif rollout.halted:
        lines.append(f"`{command} rollout resume` continues it")
    return lines


def preview_json(preview: Preview) -> dict[str, Any]:
    """``rollout preview --json``: :meth:`Preview.to_json` with percentages in percent."""
    return {
        **preview.to_json(),
        "from_percent": percent_to_output(preview.from_percent),
        "to_percent": percent_to_output(preview.to_percent),
    }


def preview_text(preview: Preview) -> list[str]:
    """``rollout preview``: who moves, who the ratchet keeps, who stays although in range."""
    return preview.summary()


class ProgressBar:
    """A one-line progress bar on a terminal (nothing when the stream is not one).

    Called once per finished tenant, as the controller's ``progress`` hook.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self.stream, self.total, self.label = stream, total, label
        self.done = self.failed = 0
        self.enabled = total > 0 and stream.isatty()

    def __call__(self, result: TenantResult) -> None:
        self.done += 1
        self.failed += bool(result.failed)
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(
                f"\r{self.label} [{bar}] {self.done}/{self.total}, {self.failed} failed"
            )
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()

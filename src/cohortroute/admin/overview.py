"""The overview page and its live JSON: versions, where each is mounted, the default, the
rollout, and tenants per version from the maintained tally (never a registry scan)."""

from __future__ import annotations

import json
import logging
from typing import Any

from werkzeug.wrappers import Response

from ..policy import Policy, Rollout, format_percent
from ..versions import describe as describe_versions
from .app import Ctx
from .html import Html, definitions, link, table, tag, when

log = logging.getLogger(__name__)


def rollout_facts(rollout: Rollout | None, now: float) -> dict[str, str]:
    """What an operator reads about the rollout, keyed by label (shared by pages and JSON)."""
    if rollout is None:
        return {"Rollout": "none running"}
    current = rollout.at(now)
    plan = ", ".join(format_percent(p) for p in current.plan) or "-"
    step = (
        f"{current.step + 1} of {len(current.plan)}" if current.plan and current.step >= 0 else "-"
    )
    facts = {
        "Candidate": current.candidate,
        "Percent": format_percent(current.percent),
        "Plan": plan,
        "Step": step,
        "State": "halted" if current.halted else ("timed" if current.auto else "running"),
        "Halt reason": current.halt_reason or "-",
        "Gated by migrations": "yes" if current.gated else "no",
        "Next step": _next_step(current, now),
    }
    return facts


def _next_step(rollout: Rollout, now: float) -> str:
    if rollout.halted:
        return "halted"
    moves = rollout.next_change(now)
    if moves is not None:
        return f"moves by itself in {max(0, int(moves - now))} s"
    if rollout.every and rollout.step_started_at is not None:
        allowed = rollout.step_started_at + rollout.every
        if allowed > now:
            return f"advance allowed in {int(allowed - now)} s"
    return "advance allowed now"


GUARD_LOOKBACK = 200
"""Audit entries the overview reads to find the guard's last word (a bounded read)."""


def guard_line(ctx: Ctx) -> str:
    """The guard's last action on the running rollout, from the audit log's latest entries."""
    rollout = ctx.store.policy().rollout
    if rollout is None:
        return "-"
    for entry in ctx.store.history(None, GUARD_LOOKBACK):
        if entry.at < rollout.started_at:
            break
        if entry.action.startswith("guard-") and not entry.action.startswith("guard-lease"):
            line = entry.after.get("line") if isinstance(entry.after, dict) else None
            return f"{entry.action} at {when(entry.at)}: {line or ''}".rstrip(": ")
    return "no guard action yet (the live verdict and gate are on the Signals page)"


def live_data(ctx: Ctx) -> dict[str, Any]:
    """The overview's numbers as JSON (polled by admin.js)."""
    policy = ctx.store.policy()
    now = ctx.admin.clock()
    tally = ctx.admin.counts.latest()
    data: dict[str, Any] = {
        "revision": policy.revision,
        "default": policy.default,
        "rollout": {**rollout_facts(policy.rollout, now), "Guard": guard_line(ctx)},
        "tenants": None if tally is None else tally.versions,
        "registered": None if tally is None else tally.registered,
        "counted_revision": None if tally is None else tally.revision,
    }
    return data


def api_overview(ctx: Ctx) -> Response:
    """``GET /api/overview``."""
    return Response(json.dumps(live_data(ctx)), content_type="application/json")


def overview(ctx: Ctx) -> Response:
    """``GET /``."""
    policy: Policy = ctx.store.policy()
    now = ctx.admin.clock()
    tally = ctx.admin.counts.latest()
    counted = tally.versions if tally is not None else {}
    pins = tally.pins if tally is not None else {}
    rows = [
        (
            info.version,
            _role(info.version, info.default, info.retired, policy),
            info.mounted_host or "-",
            when(info.mounted_at),
            _count(counted.get(info.version, 0), tally is not None),
            _count(pins.get(info.version, 0), tally is not None),
        )
        for info in describe_versions(policy, ())
    ]
    versions = table(
        "Versions", ["Version", "Role", "Last mounted on", "Mounted at", "Tenants", "Pins"], rows
    )
    if tally is None:
        note = "Tenants per version: counting in the background, refresh in a moment."
    else:
        note = (
            f"Tenants per version as of revision {tally.revision} ({when(tally.at)}), "
            f"{tally.registered} registered; the store is at revision {policy.revision}."
        )
    facts = {**rollout_facts(policy.rollout, now), "Guard": guard_line(ctx)}
    rollout = tag("h2", "Rollout") + definitions(facts, live=True)
    rollout += tag("p", link(f"{ctx.base}/signals", "Signals, guard verdict and promotion gate"))
    body = Html(
        definitions({"Default version": policy.default or "-", "Store revision": policy.revision})
        + tag("h2", "Versions")
        + versions
        + tag("p", note, id="counts-note")
        + rollout
    )
    return ctx.render("Overview", body, live=True)


def _role(version: str, default: bool, retired: bool, policy: Policy) -> str:
    """A version's part: the default, the running rollout's candidate, retired, or blank."""
    if default:
        return "default"
    if policy.rollout is not None and policy.rollout.candidate == version:
        return "candidate"
    return "retired" if retired else ""


def _count(value: int, known: bool) -> str:
    return str(value) if known else "counting..."

"""What the guard does about a verdict, through the rollout controller, with the evidence audited.

Every action is preceded by an audit entry by actor ``guard`` whose ``after`` holds the verdict
line and the evidence (``guard-send-back``, ``guard-rollback``, ``guard-halt``,
``guard-extend``); the controller's own entries (``rollback``, ``rollout-halt``,
``rollout-rollback``) follow, also by ``guard``.

* a tenant past the breaker: back to the stable version (``rollback TENANT``), and the rollout
  paused;
* a cohort regression: roll back (or halt, per metric); a gated rollout the guard cannot move
  data for (no migrations given) is halted instead, saying so;
* a timed plan whose step would move on before the promotion gate is met: the step is extended.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

from ..changes import ChangeFn, Mutation, StateReader, update_rollout
from ..errors import CohortRouteError, ConfigurationError
from ..policy import MAX_HALT_REASON, Policy, Rollout
from ..rollout.controller import RolloutController
from ..store.base import Store
from .assess import Assessment
from .explain import ACTOR, tenant_line, verdict_line

log = logging.getLogger(__name__)

HISTORY = 5000
"""Audit entries read back to find what the guard already did on this rollout."""


def note(action: str, tenant: str | None, evidence: dict[str, Any]) -> ChangeFn:
    """A change writing only an audit entry: the evidence behind the action that follows."""

    def change(state: StateReader) -> Mutation:
        m = Mutation()
        m.record(action, tenant, None, evidence)
        return m

    return change


def act(controller: RolloutController, a: Assessment, interval: float) -> list[str]:
    """Carry out the verdict; returns one sentence per action taken."""
    store = controller.store
    rollout = a.subject.rollout
    done: list[str] = []
    if a.blind:  # nothing to judge and nothing to gate on: say so once per rollout
        if not _said(store, rollout, "guard-blind"):
            line = verdict_line(a)
            store.write(
                note("guard-blind", None, {"line": line, "salt": rollout.salt}), actor=ACTOR
            )
            done.append(line)
        return done
    for tenant, metric, _ in a.verdict.breakers:
        if (
            tenant in a.held
            or _said(store, rollout, "guard-send-back", tenant)
            or any(s.startswith(f"sent {tenant} ") for s in done)
        ):
            continue  # sent back already, or tried once this rollout and it failed
        line = tenant_line(a, tenant, metric)
        evidence = {"line": line, "salt": rollout.salt, **a.verdict.to_json()}
        store.write(note("guard-send-back", tenant, evidence), actor=ACTOR)
        try:
            controller.rollback(tenant)
            done.append(f"sent {tenant} back to {a.subject.stable}: {line}")
        except CohortRouteError as exc:
            done.append(f"could not send {tenant} back ({exc}; not retried): {line}")
        _halt(controller, f"guard: {line}", done)
    kind = a.verdict.kind
    if kind in ("rollback", "halt") and _done_already(store, rollout, kind):
        return done
    if kind in ("rollback", "halt"):
        line = verdict_line(a)
        evidence = {"line": line, "salt": rollout.salt, **a.verdict.to_json()}
        store.write(note(f"guard-{kind}", None, evidence), actor=ACTOR)
        if kind == "rollback":
            try:
                controller.rollback()
                done.append(f"rolled back {rollout.candidate}: {line}")
            except ConfigurationError as exc:  # gated, and no migrations to move data back
                _halt(controller, f"guard: {line} (cannot roll back: {exc})", done)
        else:
            _halt(controller, f"guard: {line}", done)
    elif not a.verdict.gate.met:
        extended = _extend(controller, a, interval)
        if extended:
            done.append(extended)
    return done


def _done_already(store: Store, rollout: Rollout, kind: str) -> bool:
    """Whether a cohort verdict has nothing left to do: the rollout is halted and a halt is all
    it asks for, or the guard already tried to roll it back (a gated rollout it cannot move
    data back for, halted instead). Not repeated at every check: one audit entry, one
    revision. A rollout an operator resumed is not halted: the guard acts on it again."""
    if not rollout.halted:
        return False
    return kind == "halt" or _said(store, rollout, "guard-rollback")


def _said(store: Store, rollout: Rollout, action: str, tenant: str | None = None) -> bool:
    """Whether the guard already wrote ``action`` (about ``tenant``, else the rollout) on this
    rollout: what it tried or said once and does not repeat. A tenant's own history is short;
    the whole log is read back to the rollout's start, at most :data:`HISTORY` entries."""
    for entry in store.history(tenant, HISTORY):
        if entry.at < rollout.started_at:
            break
        after = entry.after if isinstance(entry.after, dict) else {}
        if (
            entry.action == action
            and entry.actor == ACTOR
            and entry.tenant == tenant
            and after.get("salt") == rollout.salt
        ):
            return True
    return False


def _halt(controller: RolloutController, reason: str, done: list[str]) -> None:
    current = controller.current()
    if current is not None and not current.halted:
        # the verdict line (sent-back tenants and all) may be longer than a halt reason holds:
        # the whole line is in the audit log's evidence
        short = " ".join(reason.split())
        if len(short) > MAX_HALT_REASON:
            short = short[: MAX_HALT_REASON - 3] + "..."
        controller.halt(short)
        done.append(f"halted the rollout: {reason}")


def _extend(controller: RolloutController, a: Assessment, interval: float) -> str | None:
    """Push a timed plan's next step back until the gate can be met; None when not needed."""
    now = a.now
    current = a.subject.rollout.at(now)
    due = current.next_change(now)
    if a.subject.ended or current.halted or due is None or current.every is None:
        return None
    if due - now > 2 * interval:
        return None
    gate = a.verdict.gate
    traffic = sum(e.requests for e in a.evidence.tenants.values())
    elapsed = max(now - a.subject.rollout.started_at, 60.0)
    rate = traffic / elapsed
    wait = current.every if not gate.more_requests or rate <= 0 else gate.more_requests / rate
    wait = min(max(wait, 2 * interval), current.every)
    salt = current.salt
    started = now + wait - current.every

    def update(policy: Policy) -> Policy:
        r = policy.rollout
        if r is None or r.salt != salt:
            return policy
        return replace(policy, rollout=replace(r.at(now), step_started_at=started))

    line = (
        f"step held {math.ceil(wait / 60)} more minute(s): the promotion gate needs "
        f"{gate.more_text} to detect a {gate.theta:g}x regression "
        f"({gate.have:.2f} of {gate.needed:.2f} expected errors)"
    )
    store = controller.store
    store.write(note("guard-extend", None, {"line": line, "gate": gate.to_json()}), actor=ACTOR)
    # the rollout's own entry, like the controller's (rollout-halt): the note above is the
    # guard's action, this is the change it made
    store.write(update_rollout("rollout-extend", update), actor=ACTOR)
    return line

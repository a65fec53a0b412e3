"""The rollout page: the exact preview of who moves next, and every action behind a
confirmation page that says what will happen before anything changes."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from ..advice import said
from ..errors import CohortRouteError, ValidationError, quoted
from ..policy import format_percent
from ..rollout import Preview
from .app import Ctx
from .html import Html, button, definitions, esc, field, form, hidden, join, link, select, tag
from .overview import rollout_facts

log = logging.getLogger(__name__)

SHOWN = 200
"""How many tenant names a preview lists on the page (the count is always exact)."""

ACTIONS = ("advance", "halt", "resume", "rollback", "finalize")


def names(items: tuple[str, ...] | list[str], base: str) -> Html:
    """Tenant names linked to their pages (the first :data:`SHOWN`)."""
    shown = join(tag("li", link(f"{base}/tenants/{esc(n)}", n)) for n in items[:SHOWN])
    more = f"<li>... and {len(items) - SHOWN} more</li>" if len(items) > SHOWN else ""
    return Html(f"<ul>{shown}{more}</ul>")


def describe_preview(preview: Preview, base: str) -> Html:
    """A preview as an operator reads it."""
    return Html(
        definitions(
            {
                "From": format_percent(preview.from_percent),
                "To": format_percent(preview.to_percent),
                "Tenants that move": preview.count,
                "Of which need a migration first": len(preview.migrate),
                "Tenants considered": preview.considered,
            }
        )
        + tag("h3", f"Moving to {preview.candidate}")
        + names(preview.moves, base)
        + (
            tag("h3", "Stay where they are")
            + tag("ul", join(tag("li", f"{t}: {why}") for t, why in preview.stays.items()))
            if preview.stays
            else Html("")
        )
    )


def rollout_page(ctx: Ctx) -> Response:
    """``GET /rollout``."""
    policy = ctx.store.policy()
    now = ctx.admin.clock()
    body = Html(definitions(rollout_facts(policy.rollout, now), live=True))
    if policy.rollout is None:
        return ctx.render("Rollout", body + _start_form(ctx))
    controls = join(
        form(
            ctx.base + "/rollout/confirm",
            hidden("action", a) + button(a.capitalize()),
            None,
            method="get",
        )
        for a in ACTIONS
    )
    body = Html(body + tag("h2", "Actions") + Html(f'<div class="actions">{controls}</div>'))
    try:
        preview = ctx.controller().preview()
        body = Html(
            body + tag("h2", "Who moves at the next step") + describe_preview(preview, ctx.base)
        )
    except CohortRouteError as exc:
        body = Html(body + tag("h2", "Who moves at the next step") + tag("p", said(exc)))
    return ctx.render("Rollout", body)


def _start_form(ctx: Ctx) -> Html:
    policy = ctx.store.policy()
    candidates = sorted(policy.versions - {policy.default or ""})
    choose = select("candidate", "Candidate version", candidates)
    body = (
        choose
        + " "
        + field("plan", "Plan (percentages, comma-separated)", "1,5,25,50,100")
        + " "
        + field("every", "Minimum seconds per step", "0", kind="number", min="0")
        + " "
        + button("Start rollout")
    )
    return Html(tag("h2", "Start a rollout") + form(ctx.base + "/rollout/start", body, ctx.csrf))


def _what_happens(ctx: Ctx, action: str) -> Html:
    policy = ctx.store.policy()
    rollout = policy.rollout
    if rollout is None:
        raise NotFound("No rollout is running.")
    if action == "advance":
        preview = ctx.controller().preview()
        return Html(
            tag("p", "The rollout moves to its next step:") + describe_preview(preview, ctx.base)
        )
    if action == "halt":
        return Html(
            tag("p", "The rollout freezes where it is: nobody moves, no new tenant migrates.")
            + field("reason", "Reason (kept in the audit log)", "")
        )
    if action == "resume":
        return Html(
            tag("p", "The halted rollout continues; the current step starts its dwell again.")
        )
    if action == "rollback":
        return Html(
            tag(
                "p",
                f"The rollout of {rollout.candidate} is halted and ended: every tenant goes back "
                f"to {policy.default}, migrated tenants' data is moved back first.",
            )
        )
    return Html(
        tag(
            "p",
            f"Every tenant moves to {rollout.candidate}, which becomes the default; "
            f"{policy.default} then serves no one.",
        )
    )


def confirm(ctx: Ctx) -> Response:
    """``GET /rollout/confirm?action=...``: what the action will do, and the button to do it."""
    action = ctx.request.args.get("action", "")
    if action not in ACTIONS:
        raise NotFound("Unknown rollout action.")
    back = tag("p", link(ctx.base + "/rollout", "Cancel and go back"))
    try:
        what = _what_happens(ctx, action)
    except CohortRouteError as exc:  # advance with no next step: nothing to confirm
        log.info("cohortroute admin: %s cannot be confirmed: %s", action, exc)
        why = tag("p", f"The rollout cannot {action} now: {said(exc)}", role="alert")
        return ctx.render(f"Cannot {action} the rollout", Html(why + back), status=409)
    body = form(
        ctx.base + f"/rollout/{action}",
        what + button(f"Confirm {action}", class_="danger"),
        ctx.csrf,
    )
    return ctx.render(f"Confirm: {action} the rollout", Html(body + back))


def result_page(ctx: Ctx, title: str, work: Callable[[], object], back: str) -> Response:
    """Run a mutation; show its outcome (or the error, escaped) with a link back."""
    try:
        outcome = work()
    except CohortRouteError as exc:
        log.info("cohortroute admin: %s refused: %s", title, exc)
        return ctx.render(
            f"{title}: refused",
            Html(tag("p", said(exc), role="alert") + tag("p", link(back, "Back"))),
            status=409,
        )
    summary = getattr(outcome, "summary", None)
    text = summary() if callable(summary) else "Done."
    return ctx.render(
        f"{title}: done", Html(tag("p", text, role="status") + tag("p", link(back, "Back")))
    )


def dwell(text: str) -> float | None:
    """The start form's minimum seconds per step: None when blank or 0, else a finite number of
    seconds (ValidationError otherwise: ``nan`` or ``inf`` would make every later step's dwell
    check meaningless)."""
    try:
        seconds = float(text.strip() or 0)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(
            f"minimum seconds per step {quoted(text.strip(), 40)}: enter a number of seconds, like "
            "7200 (0 or blank: no minimum)"
        )
    return seconds or None


def do_action(ctx: Ctx, action: str) -> Response:
    """``POST /rollout/<action>``."""
    back = ctx.base + "/rollout"
    controller = ctx.controller()
    form_data = ctx.request.form
    if action == "start":
        plan = [p.strip() for p in form_data.get("plan", "").split(",") if p.strip()]

        def start() -> object:
            every = dwell(form_data.get("every", ""))
            return controller.start(form_data.get("candidate", ""), plan=plan, every=every)

        return result_page(ctx, "Start", start, back)
    if action == "advance":
        return result_page(ctx, "Advance", controller.advance, back)
    if action == "halt":
        reason = form_data.get("reason") or None
        return result_page(ctx, "Halt", lambda: controller.halt(reason), back)
    if action == "resume":
        return result_page(ctx, "Resume", controller.resume, back)
    if action == "rollback":
        return result_page(ctx, "Rollback", lambda: controller.rollback(), back)
    if action == "finalize":
        return result_page(ctx, "Finalize", lambda: controller.finalize(), back)
    raise NotFound("Unknown rollout action.")

"""The ``ticket`` command: record a support ticket for a tenant, as a guard signal.

The ticket is attributed to the version the tenant is on (see :mod:`cohortroute.tickets`). A
tenant the store has never seen is refused unless ``--force`` (a typo would still count in every
tenant's ticket baseline); an id already recorded shows the stored ticket, marked a duplicate.
"""

from __future__ import annotations

import argparse
import logging

from .context import EXIT_OK, Context
from .options import Subparsers, add_command, add_json
from .shapes import JsonShape

log = logging.getLogger(__name__)

TICKET = JsonShape(
    "`ticket --json`",
    (
        ("tenant", "the tenant"),
        ("version", "the version it was on when the ticket was opened"),
        ("source", "`cli`"),
        ("external_id", "the ticket's id (`--id`, or a random one)"),
        ("severity", "`low`, `normal`, `high` or `urgent`"),
        ("at", "when it was opened, Unix seconds"),
        (
            "new",
            "`false` when a ticket with this id was already recorded (the fields above are "
            "then the stored ticket's)",
        ),
    ),
)


def register(commands: Subparsers) -> None:
    """Add ``ticket``."""
    from ..tickets import SEVERITIES

    p = add_command(
        commands,
        "ticket",
        cmd_ticket,
        "record a support ticket for TENANT (the guard counts tickets per version)",
    )
    p.add_argument("tenant", metavar="TENANT", help="the tenant, as in acme.example.com -> acme")
    p.add_argument("text", metavar="TEXT", help='what the customer said ("" for nothing)')
    p.add_argument(
        "--severity",
        choices=SEVERITIES,
        default="normal",
        help="how bad: low, normal, high or urgent",
    )
    p.add_argument("--id", dest="external_id", metavar="EXTERNAL_ID", help="the help desk's id")
    p.add_argument(
        "--force",
        action="store_true",
        help="record it even for a tenant the store has never seen (no record, no requests)",
    )
    add_json(p, TICKET)


def cmd_ticket(args: argparse.Namespace, ctx: Context) -> int:
    """Record one ticket."""
    from ..errors import ValidationError
    from ..policy import check_tenant_name
    from ..tickets import known_tenant, open_ticket

    name = check_tenant_name(args.tenant)
    if not args.force and not known_tenant(ctx.store, ctx.sink, name):
        raise ValidationError(
            f"the store has never seen tenant {name!r} (no record, no requests counted): check "
            "the name, or pass --force to record the ticket anyway"
        )
    ticket, new = open_ticket(
        ctx.store,
        args.tenant,
        args.text,
        severity=args.severity,
        external_id=args.external_id,
        source="cli",
        sink=ctx.sink,
        clock=ctx.clock,
    )
    if args.json:
        ctx.emit_json(
            {
                "tenant": ticket.tenant,
                "version": ticket.version,
                "source": ticket.source,
                "external_id": ticket.external_id,
                "severity": ticket.severity,
                "at": ticket.at,
                "new": new,
            }
        )
        if not new:
            ctx.warn(
                f"ticket {ticket.external_id} was already recorded (a duplicate): this is the "
                "stored ticket; nothing changed"
            )
    elif new:
        ctx.print(f"ticket {ticket.external_id} recorded for {ticket.tenant} on {ticket.version}")
    else:
        ctx.print(
            f"ticket {ticket.external_id} was already recorded (a duplicate; nothing changed): "
            f"{ticket.tenant} on {ticket.version}, {ticket.severity}"
        )
    return EXIT_OK

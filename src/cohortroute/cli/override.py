"""The ``override`` command: mint signed QA override tokens.

A token serves one tenant one version until it expires, on routers started with
``override_keys`` holding the same key id (see :mod:`cohortroute.assign.tokens`). The secret is
read from an environment variable, never from the command line (where ``ps`` would show it).
What no router would honour is refused: a key id or secret routers refuse, and (when a store is
given and can be read) a version the store does not know.
"""

from __future__ import annotations

import argparse
import logging
import os

from ..errors import StoreError, ValidationError
from ..policy import check_tenant_name, check_version_name
from .context import ENV_STORE, EXIT_OK, Context
from .options import Subparsers, add_command, add_json
from .shapes import JsonShape

log = logging.getLogger(__name__)

ENV_KEY = "COHORTROUTE_OVERRIDE_KEY"

MINT = JsonShape(
    "`override mint --json`",
    (
        (
            "token",
            "the token: send it as the `X-Cohortroute-Override` header or the "
            "`cohortroute_override` cookie",
        ),
        ("tenant", "the tenant it is valid for"),
        ("version", "the version it serves"),
        ("key_id", "the key id that signed it"),
        ("expires", "when it stops working, Unix seconds"),
    ),
)


def register(commands: Subparsers) -> None:
    """Add ``override mint``."""
    p = add_command(
        commands,
        "override",
        cmd_override,
        "mint a signed QA override token (routers started with override_keys honour it)",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    mint = verbs.add_parser(
        "mint",
        help="print a token serving TENANT VERSION until it expires",
        description=(
            f"Print a token serving TENANT VERSION until it expires, signed with the secret in "
            f"${ENV_KEY} (or --key-env NAME) under --key-id. With a store (--store or "
            f"${ENV_STORE}), a VERSION it does not know is refused."
        ),
    )
    mint.add_argument("tenant", metavar="TENANT", help="the tenant, as in acme.example.com -> acme")
    mint.add_argument("version", metavar="VERSION", help="the version to serve it")
    mint.add_argument("--key-id", required=True, help="the key id the routers know the key by")
    mint.add_argument(
        "--key-env",
        default=ENV_KEY,
        metavar="NAME",
        help=f"the environment variable holding the secret (default {ENV_KEY})",
    )
    mint.add_argument(
        "--expires-in",
        default="1h",
        metavar="DURATION",
        help="how long it works: 90s, 15m, 2h, 1d (default 1h, at most 30d)",
    )
    add_json(mint, MINT)


def cmd_override(args: argparse.Namespace, ctx: Context) -> int:
    """Mint one token."""
    from ..assign.tokens import check_key, check_key_id, mint
    from ..rollout import parse_duration

    tenant = check_tenant_name(args.tenant)
    check_version_name(args.version)
    check_key_id(args.key_id)
    secret = os.environ.get(args.key_env)
    if not secret:
        raise ValidationError(
            f"${args.key_env} is not set: export the secret the routers hold for key id "
            f"{args.key_id} (or name another variable with --key-env)"
        )
    check_key(args.key_id, secret)  # the routers' rule: they refuse a shorter secret
    seconds = parse_duration(args.expires_in)
    if not 0 < seconds <= 30 * 86400:
        raise ValidationError("--expires-in must be more than 0 and at most 30d")
    _check_version(ctx, args.version)
    expires = int(ctx.clock.time() + seconds)
    token = mint(args.key_id, secret, tenant, args.version, expires)
    if args.json:
        ctx.emit_json(
            {
                "token": token,
                "tenant": tenant,
                "version": args.version,
                "key_id": args.key_id,
                "expires": expires,
            }
        )
    else:
        ctx.print(token)
    return EXIT_OK


def _check_version(ctx: Context, version: str) -> None:
    """Refuse a version the store does not serve, as ``pin`` does: routers ignore a token for
    a version they do not mount. Without a store, or one that cannot be read, it is not checked
    (minting needs no store)."""
    from ..versions import check_serving

    if not ctx.store_url:
        return
    try:
        policy = ctx.store.policy()
    except StoreError as exc:
        ctx.warn(f"the store could not be read, so {version} was not checked ({exc})")
        return
    check_serving(policy, version)

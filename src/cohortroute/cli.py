"""The command line: the operator's tool, with the same verbs as the Python API.

``cohortroute [--store URL] [--actor NAME] COMMAND ...`` -- the store comes from ``--store`` or
the ``COHORTROUTE_STORE`` environment variable. Every change is recorded in the store's audit
log under the actor (``--actor``, else ``$USER``).

Exit codes: 0 success; 2 a usage or validation error (bad arguments, unknown version, bad
percentage, a malformed or unreachable store URL, a conflicting change); 1 anything else (the
store failed). Expected errors print one line to stderr saying what to do, never a traceback.

Adding a command: write ``cmd_<verb>(args, ctx) -> int`` and register it in
:func:`build_parser` with :func:`add_command`; a ``rollout`` action goes on the ``actions`` of
:func:`_add_rollout`, and a new group (``tenants import``) starts with :func:`add_group`.
Raise the library's errors (or :class:`UsageError`): :func:`run` turns them into the message
and exit code. :class:`Context` opens the store lazily, so commands that need none (``demo``)
cost nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .bucketing import BUCKETS
from .decision import Decision, Reason, decide
from .errors import (
    CohortRouteError,
    ConfigurationError,
    ConflictError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
)
from .policy import (
    AuditEntry,
    Policy,
    Rollout,
    TenantRecord,
    check_tag_name,
    check_tenant_name,
    format_percent,
    parse_percent,
)
from .store.base import Store, open_store

ENV_STORE = "COHORTROUTE_STORE"
"""The environment variable naming the store when ``--store`` is not given."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, "Context"], int]


class UsageError(CohortRouteError):
    """A command line that cannot be run as given (exit 2); the message says how to fix it."""


class Context:
    """What a command runs with: the store (opened on first use), the actor and the outputs."""

    def __init__(
        self,
        store_url: str | None,
        actor: str | None,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.store_url = store_url
        self.actor = actor
        self.out = out
        self.err = err
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The store named by ``--store`` or ``$COHORTROUTE_STORE``; opened on first use."""
        if self._store is None:
            if not self.store_url:
                raise UsageError(
                    "no store given: pass --store URL (for example "
                    "--store sqlite:///cohortroute.db) or set the "
                    f"{ENV_STORE} environment variable to the URL your routers use"
                )
            self._store = open_cli_store(self.store_url)
        return self._store

    def close(self) -> None:
        """Release the store's connections, if it was opened."""
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None

    def print(self, *lines: str) -> None:
        """Write lines to standard output."""
        for line in lines:
            print(line, file=self.out)

    def warn(self, message: str) -> None:
        """Write a note to standard error (not an error: the command goes on)."""
        print(f"cohortroute: note: {message}", file=self.err)

    def emit_json(self, data: Any) -> None:
        """Write ``data`` as indented JSON to standard output (the ``--json`` output)."""
        json.dump(data, self.out, indent=2)
        self.out.write("\n")

    def command(self) -> str:
        """How to call the CLI against this store again, for the hints commands print."""
        if self.store_url and os.environ.get(ENV_STORE) != self.store_url:
            return f"cohortroute --store {shlex.quote(redact_url(self.store_url))}"
        return "cohortroute"


def open_cli_store(url: str) -> Store:
    """Open a store URL, turning a backend that cannot be loaded into a ConfigurationError."""
    try:
        return open_store(url)
    except ImportError as exc:
        scheme = urlsplit(url).scheme.lower()
        raise ConfigurationError(
            f"cannot load the store backend for {scheme!r} URLs ({exc}); install the extra it "
            f"needs (pip install 'cohortroute[{scheme}]') or use another store"
        ) from exc


def redact_url(url: str) -> str:
    """The store URL without its password, safe to print and to put in JSON output."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return url


# --- the parser --------------------------------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the command (``--store X status`` = ``status --store X``).

    Defaults are SUPPRESS so a value given before the command is not reset by the subparser.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"the store URL, e.g. sqlite:///state.db (default: ${ENV_STORE})",
    )
    group.add_argument(
        "--actor",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="who to record in the audit log for changes (default: $USER)",
    )
    return common


_COMMON = _common_options()


def add_command(
    subparsers: Any, name: str, handler: Handler, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Register one command: ``handler(args, ctx)`` runs it and returns the exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        parents=[_COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def add_group(subparsers: Any, name: str, help: str, description: str | None = None) -> Any:
    """Register a command group (``rollout``, ``tenants``...); returns its actions' subparsers.

    Add each action to the returned object with :func:`add_command`.
    """
    group: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description or help, parents=[_COMMON]
    )
    return group.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON with stable keys (see docs/cli.md)"
    )


def _positive_int(text: str) -> int:
    """``--limit``: a whole number of at least 1 (argparse turns the error into exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 1")
    return value


def _percent(text: str) -> str:
    """Validate a percentage while parsing so a bad one is a usage error (exit 2) at once."""
    try:
        parse_percent(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _port(text: str) -> int:
    """``--port``: 0-65535, where 0 lets the system pick a free port."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0-65535 (0 picks a free one)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per verb, each bound to its ``cmd_*`` function."""
    parser = argparse.ArgumentParser(
        prog="cohortroute",
        description=(
            "Operate cohortroute: see which version each tenant gets and why, pin and tag "
            "tenants, set tag rules, run rollouts, read the audit log, or start the demo."
        ),
        epilog=(
            f"The store is --store URL or ${ENV_STORE}. Exit codes: 0 ok, 2 usage or "
            "validation error, 1 anything else."
        ),
        parents=[_COMMON],
    )
    parser.add_argument("--version", action="version", version=f"cohortroute {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = add_command(
        commands, "status", cmd_status, "versions, default, rules, rollout and tenant counts"
    )
    _add_json(p)

    p = add_command(
        commands,
        "explain",
        cmd_explain,
        "which version a tenant gets, why, and what would change it",
    )
    p.add_argument("tenant", metavar="TENANT", help="the tenant, e.g. acme for acme.example.com")
    _add_json(p)

    p = add_command(commands, "pin", cmd_pin, "pin a tenant to a version (beats rules/rollout)")
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("version", metavar="VERSION")

    p = add_command(commands, "unpin", cmd_unpin, "remove a tenant's pin")
    p.add_argument("tenant", metavar="TENANT")

    p = add_command(commands, "tag", cmd_tag, "add a tag (beta, internal...) to a tenant")
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("tag", metavar="TAG")

    p = add_command(commands, "untag", cmd_untag, "remove a tag from a tenant")
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("tag", metavar="TAG")

    p = add_command(
        commands,
        "rule",
        cmd_rule,
        "serve tenants with a tag a version: rule TAG VERSION, or rule --remove TAG",
    )
    p.add_argument("tag", metavar="TAG")
    p.add_argument("version", metavar="VERSION", nargs="?")
    p.add_argument("--remove", action="store_true", help="remove the rule for TAG")

    _add_rollout(commands)
    _add_tenants(commands)  # tenants import / add (issue 5)

    p = add_command(commands, "history", cmd_history, "the audit log, newest first")
    p.add_argument("tenant", metavar="TENANT", nargs="?", help="only this tenant's entries")
    p.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="entries (default 20)"
    )
    _add_json(p)

    p = add_command(
        commands,
        "demo",
        cmd_demo,
        "serve two versions of a small app on localhost to try cohortroute",
        description=(
            "Serve two bundled versions of a small app under the domain localhost, with a few "
            "seeded tenants, a pin, a tag rule and a rollout. State lives in a SQLite file "
            "(./cohortroute-demo.db unless --store is given; $COHORTROUTE_STORE is ignored "
            "so the demo never writes into your real store)."
        ),
    )
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return parser


def _add_rollout(commands: Any) -> None:
    """The ``rollout`` group: one action per verb, added like any command."""
    actions = add_group(
        commands,
        "rollout",
        "start, advance, preview, halt, run, roll back or finalize a rollout",
        "Run the rollout: at most one version is rolled out at a time (see docs/rollouts.md).",
    )

    p = add_command(
        actions, "start", cmd_rollout_start, "start rolling out VERSION to a share of tenants"
    )
    p.add_argument("version", metavar="VERSION")
    p.add_argument(
        "--percent",
        type=_percent,
        default=None,
        metavar="P",
        help="share of tenants to start with: 5, 0.5 or 5%% (default: the plan's first step, "
        "else 0)",
    )
    p.add_argument(
        "--plan",
        type=_plan,
        default=(),
        metavar="P,P,...",
        help="percent steps that go up, e.g. 1,5,25,50,100 (then `rollout advance`)",
    )
    p.add_argument(
        "--every",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="minimum dwell per step, e.g. 2h, 90m, 3600 (advance refuses earlier)",
    )
    p.add_argument(
        "--auto",
        action="store_true",
        help="timed plan: move to the next step by itself every --every (no scheduler needed)",
    )
    _add_app(p)
    p.add_argument(
        "--salt",
        default=None,
        help="bucketing salt (default: a fresh random one, so each rollout picks new tenants)",
    )

    p = add_command(actions, "set", cmd_rollout_set, "set the running rollout's percentage")
    p.add_argument("percent", metavar="PERCENT", type=_percent, help="5, 0.5 or 5%%")
    _add_settle(p)
    _add_rollout_controller_verbs(actions)  # advance, preview, halt, ... (issue 5)


# --- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    return run(sys.argv[1:] if argv is None else argv, out=sys.stdout, err=sys.stderr)


def run(argv: Sequence[str], *, out: TextIO, err: TextIO) -> int:
    """Parse ``argv``, run the command, and map expected errors to a message and exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    store_url = getattr(args, "store", None) or os.environ.get(ENV_STORE) or None
    ctx = Context(store_url, getattr(args, "actor", None), out, err)
    handler: Handler = args.handler
    try:
        code = handler(args, ctx)
        out.flush()  # inside the try: a reader that went away is handled below
        return code
    except KeyboardInterrupt:
        print("cohortroute: interrupted", file=err)
        return 130
    except (
        UsageError,
        ConfigurationError,
        ValidationError,
        ConflictError,
        StoreUnavailableError,  # an unreachable store is a wrong URL more often than not
    ) as exc:
        return _fail(err, exc, EXIT_USAGE)
    except CohortRouteError as exc:  # StoreError and the rest: the store failed
        return _fail(err, exc, EXIT_ERROR)
    except BrokenPipeError:
        # The reader went away (`cohortroute history | head`): not worth a traceback. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    finally:
        with contextlib.suppress(CohortRouteError):
            ctx.close()


def _fail(err: TextIO, exc: BaseException, code: int) -> int:
    """Print an expected error as one line (with a store error's cause) and return ``code``."""
    message = str(exc)
    cause = exc.__cause__
    if isinstance(exc, StoreError) and cause is not None:
        detail = " ".join(str(cause).split())
        if detail not in " ".join(message.split()):
            message = f"{message} ({detail})"
    print(f"cohortroute: error: {message}", file=err)
    return code


# --- read commands -------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    """Versions, default, tag rules, the rollout, and how many stored tenants are on what."""
    store = ctx.store
    policy = store.policy()
    versions = sorted(policy.versions)
    default = policy.default
    # version -> reason -> count, over the stored tenant records, decided as a router would.
    counts: dict[str, dict[str, int]] = {v: {} for v in versions}
    stored = 0
    for record in store.tenants():
        stored += 1
        if default is not None:
            decision = decide(policy, record, default)
            reasons = counts.setdefault(decision.version, {})
            reasons[decision.reason.value] = reasons.get(decision.reason.value, 0) + 1
    by_version = {v: sum(reasons.values()) for v, reasons in counts.items()}
    if args.json:
        by_reason: dict[str, int] = {}
        for reasons in counts.values():
            for reason, n in reasons.items():
                by_reason[reason] = by_reason.get(reason, 0) + n
        ctx.emit_json(
            {
                "store": redact_url(ctx.store_url or ""),
                "revision": policy.revision,
                "default": default,
                "versions": versions,
                "rules": [{"tag": tag, "version": version} for tag, version in policy.rules],
                "rollout": rollout_json(current_rollout(policy.rollout)),
                "tenants": {"stored": stored, "by_version": by_version, "by_reason": by_reason},
            }
        )
        return EXIT_OK
    lines = [f"store:     {redact_url(ctx.store_url or '')} (revision {policy.revision})"]
    if versions:
        shown = [f"{v} (default)" if v == default else v for v in versions]
        lines.append(f"versions:  {', '.join(shown)}")
    else:
        lines.append(
            "versions:  none yet -- a router records the versions it mounts when it starts"
        )
    if default is not None and default not in policy.versions:
        lines.append(f"default:   {default}")
    rules = [f"{tag} -> {version}" for tag, version in policy.rules]
    lines.append(f"rules:     {', '.join(rules) if rules else 'none'}")
    lines.append(f"rollout:   {describe_rollout(current_rollout(policy.rollout))}")
    lines.append(f"tenants:   {stored} with a stored record (pin, tags or rollout state)")
    width = max((len(v) for v in counts), default=0)
    for version, reasons in counts.items():
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        row = f"           {version:<{width}}  {by_version[version]:>5}"
        lines.append(f"{row}  ({why})" if why else row)
    ctx.print(*lines)
    return EXIT_OK


def describe_rollout(rollout: Rollout | None) -> str:
    """One line about the rollout: ``2026.12 at 5% (salt ..., started ... UTC)`` or ``none``.

    Give it :func:`current_rollout`, so the percentage is the one routers apply now.
    """
    if rollout is None:
        return "none"
    text = f"{rollout.candidate} at {format_percent(rollout.percent)}"
    notes = [f"salt {rollout.salt}", f"started {_when(rollout.started_at)} UTC"]
    if rollout.plan:
        plan = " -> ".join(format_percent(p) for p in rollout.plan)
        notes.append(f"plan {plan}, step {rollout.step + 1} of {len(rollout.plan)}")
    if rollout.every is not None:
        pace = "every" if rollout.auto else "at least"
        notes.append(f"{pace} {rollout.every:g}s per step")
    if rollout.gated:
        notes.append("gated: tenants move once their data is migrated")
    if rollout.halted:
        notes.append("HALTED")
    return f"{text} ({'; '.join(notes)})"


def rollout_json(rollout: Rollout | None) -> dict[str, Any] | None:
    """The rollout for ``--json`` output: percentages as numbers of percent and basis points.

    Give it :func:`current_rollout`, so ``percent`` is what routers apply now (a timed plan
    moves on by the clock without a write).
    """
    if rollout is None:
        return None
    return {
        "candidate": rollout.candidate,
        "percent": rollout.percent / 100,
        "basis_points": rollout.percent,
        "salt": rollout.salt,
        "started_at": rollout.started_at,
        "plan": [p / 100 for p in rollout.plan],
        "step": rollout.step,
        "every": rollout.every,
        "auto": rollout.auto,
        "halted": rollout.halted,
        "gated": rollout.gated,
    }


def cmd_explain(args: argparse.Namespace, ctx: Context) -> int:
    """Which version a tenant gets, why, and what would change it -- what a router decides."""
    name = check_tenant_name(args.tenant)
    store = ctx.store
    policy = store.policy()
    record = store.tenant(name)
    decision = decide_for(policy, record)
    hints = explain_hints(decision, policy, record, ctx.command())
    if args.json:
        ctx.emit_json(
            {
                "tenant": name,
                "version": decision.version,
                "reason": decision.reason.value,
                "detail": decision.detail,
                "bucket": decision.bucket,
                "default": policy.default,
                "pin": record.pin,
                "tags": sorted(record.tags),
                "ratchet": record.ratchet,
                "rollout": rollout_json(current_rollout(policy.rollout)),
                "maintenance": decision.maintenance,
                "revision": policy.revision,
                "hints": hints,
            }
        )
        return EXIT_OK
    lines = [
        f"{name} -> {decision.version} (reason: {decision.reason.value})",
        f"  why:     {decision.detail}",
    ]
    rollout = current_rollout(policy.rollout)
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
    lines.extend(f"    - {hint}" for hint in hints)
    ctx.print(*lines)
    return EXIT_OK


def decide_for(policy: Policy, record: TenantRecord) -> Decision:
    """The decision a router makes for ``record`` under ``policy`` (the store's default).

    Exactly :func:`cohortroute.decide` with the store's own default: that is the version every
    router falls back to, since a router's own default only seeds an empty store.
    """
    if policy.default is None:
        raise UsageError(
            "the store has no default version yet: a router records its versions and default "
            "when it starts (CohortRouter(apps=..., store=URL)); start one first"
        )
    return decide(policy, record, policy.default)


def explain_hints(
    decision: Decision,
    policy: Policy,
    record: TenantRecord,
    command: str = "cohortroute",
    *,
    now: float | None = None,
) -> list[str]:
    """Human hints on what would move the tenant, each with the command that does it.

    ``command`` prefixes the commands shown (``cohortroute --store URL`` in the demo). The
    hints are advice, not a contract: ``--json`` carries them as plain sentences.
    """
    name = record.name
    hints: list[str] = []
    rollout = current_rollout(policy.rollout, now)
    if decision.maintenance:
        hints.append(
            "its data is being migrated (or a migration failed): requests get 503 with "
            "Retry-After until that is resolved"
        )
    if decision.reason is Reason.PIN:
        after = decide_for(policy, replace(record, pin=None))
        hints.append(
            f"pinned: `{command} unpin {name}` to release it (it would then get "
            f"{after.version}, reason {after.reason.value})"
        )
    elif decision.reason is Reason.TAG:
        rule = policy.rule_for(record.tags)
        tag = rule[0] if rule else "?"
        after = decide_for(policy, replace(record, tags=record.tags - {tag}))
        hints.append(
            f"tag rule {tag} -> {decision.version}: `{command} untag {name} {tag}` or "
            f"`{command} rule --remove {tag}` to stop it (it would then get {after.version}, "
            f"reason {after.reason.value})"
        )
        hints.append(f"a pin beats tag rules: `{command} pin {name} VERSION`")
    elif rollout is not None and decision.bucket is not None:
        hints.extend(_rollout_hints(decision, rollout, record, policy, command))
    else:
        hints.append(
            f"on the default version ({decision.version}) and no rollout is running: "
            f"`{command} pin {name} VERSION`, a tag rule, or "
            f"`{command} rollout start VERSION --percent P` would change it"
        )
    unruled = sorted(t for t in record.tags if t not in dict(policy.rules))
    if unruled and decision.reason is not Reason.PIN:
        tag = unruled[0]
        hints.append(
            f"its tag{'s' if len(unruled) > 1 else ''} {', '.join(unruled)} "
            f"{'have' if len(unruled) > 1 else 'has'} no rule: "
            f"`{command} rule {tag} VERSION` would move every tenant tagged {tag}"
        )
    return hints


def _rollout_hints(
    decision: Decision, rollout: Rollout, record: TenantRecord, policy: Policy, command: str
) -> list[str]:
    """Hints for a tenant the rollout step decided: in or out by bucket, ratchet, held back."""
    name, b = record.name, decision.bucket if decision.bucket is not None else 0
    now_at = format_percent(rollout.percent)
    candidate = rollout.candidate
    if decision.version == candidate:
        hints = []
        if b < rollout.percent:
            hints.append(
                f"in the rollout of {candidate} while the percentage stays above "
                f"{format_percent(b)} (bucket {b}; now {now_at})"
            )
        elif record.ratchet == candidate:
            hints.append(
                f"the ratchet keeps it on {candidate} even though the percentage was lowered; "
                "only a rollback moves it back"
            )
        fallback = policy.default or decision.version
        hints.append(f"`{command} pin {name} {fallback}` to take it out of the rollout now")
        return hints
    if record.held_salt == rollout.salt:
        return [
            f"rolled back from this rollout of {candidate}: it stays on {decision.version} "
            f"until the rollout ends; `{command} pin {name} {candidate}` moves it anyway"
        ]
    if b < rollout.percent:  # its bucket is in, but something (a migration) holds it back
        return [f"its bucket {b} is in the rollout ({now_at}): {decision.detail}"]
    return [
        f"in the rollout of {candidate} once the percentage passes {format_percent(b)} "
        f"(bucket {b}; now {now_at}): `{command} rollout set {format_percent(b + 1)}`",
        f"`{command} pin {name} {candidate}` to move it now",
    ]


def current_rollout(rollout: Rollout | None, now: float | None = None) -> Rollout | None:
    """The rollout as routers apply it now: a timed plan moved on by the clock."""
    if rollout is None:
        return None
    return rollout.at(time.time() if now is None else now)


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    """The audit log, newest first: who changed what, when, from what to what."""
    tenant = None if args.tenant is None else check_tenant_name(args.tenant)
    entries = ctx.store.history(tenant, limit=args.limit)
    if args.json:
        ctx.emit_json({"entries": [audit_json(entry) for entry in entries]})
        return EXIT_OK
    if not entries:
        ctx.print("no changes recorded" + (f" for {tenant}" if tenant else ""))
        return EXIT_OK
    rows = [("REV", "TIME (UTC)", "ACTOR", "ACTION", "TENANT", "CHANGE")]
    for e in entries:
        change = f"{_show(e.action, e.before)} => {_show(e.action, e.after)}"
        rows.append((str(e.revision), _when(e.at), e.actor, e.action, e.tenant or "-", change))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        ctx.print("  ".join([*cells, row[5]]).rstrip())
    return EXIT_OK


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry for ``--json`` output (``time`` is ``at`` as ISO 8601 UTC)."""
    return {
        "revision": entry.revision,
        "at": entry.at,
        "time": datetime.fromtimestamp(entry.at, timezone.utc).isoformat(timespec="seconds"),
        "actor": entry.actor,
        "action": entry.action,
        "tenant": entry.tenant,
        "before": entry.before,
        "after": entry.after,
    }


def _when(at: float) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` in UTC (operators in several zones read it)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


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
    if isinstance(value, dict) and "candidate" in value and "percent" in value:
        text = f"{value['candidate']} at {format_percent(int(value['percent']))}"
        return text + (" (halted)" if value.get("halted") else "")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- write commands ------------------------------------------------------------------------


def _changed(ctx: Context, before: int, after: int, done: str, unchanged: str) -> int:
    """Report a write: what changed and the new revision, or that nothing needed to change."""
    if after == before:
        ctx.print(f"{unchanged}; nothing changed (revision {after})")
    else:
        ctx.print(f"{done} (revision {after})")
    if ctx.store_url and urlsplit(ctx.store_url).scheme.lower() == "memory":
        ctx.warn(
            "memory:// lives only in this process, so this change is already gone; "
            "use the URL your routers use (sqlite:///..., redis://..., postgresql://...)"
        )
    return EXIT_OK


def cmd_pin(args: argparse.Namespace, ctx: Context) -> int:
    """Pin a tenant to a version: it gets that version whatever the rules and rollout say."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    after = ctx.store.pin(name, args.version, actor=ctx.actor)
    return _changed(
        ctx, before, after, f"pinned {name} to {args.version}", f"{name} is already pinned there"
    )


def cmd_unpin(args: argparse.Namespace, ctx: Context) -> int:
    """Remove a tenant's pin; the tag rules and the rollout decide again."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    after = ctx.store.unpin(name, actor=ctx.actor)
    return _changed(ctx, before, after, f"unpinned {name}", f"{name} is not pinned")


def cmd_tag(args: argparse.Namespace, ctx: Context) -> int:
    """Add a tag to a tenant (a tag rule for it then applies)."""
    name, tag = check_tenant_name(args.tenant), check_tag_name(args.tag)
    before = ctx.store.revision()
    after = ctx.store.tag(name, tag, actor=ctx.actor)
    return _changed(ctx, before, after, f"tagged {name} {tag}", f"{name} already has tag {tag}")


def cmd_untag(args: argparse.Namespace, ctx: Context) -> int:
    """Remove a tag from a tenant."""
    name, tag = check_tenant_name(args.tenant), check_tag_name(args.tag)
    before = ctx.store.revision()
    after = ctx.store.untag(name, tag, actor=ctx.actor)
    return _changed(
        ctx, before, after, f"removed tag {tag} from {name}", f"{name} has no tag {tag}"
    )


def cmd_rule(args: argparse.Namespace, ctx: Context) -> int:
    """Set (``rule TAG VERSION``) or remove (``rule --remove TAG``) a tag rule."""
    tag = check_tag_name(args.tag)
    if args.remove and args.version is not None:
        raise UsageError(f"give either `rule {tag} VERSION` or `rule --remove {tag}`, not both")
    if not args.remove and args.version is None:
        raise UsageError(
            f"give the version tenants tagged {tag} should get (`rule {tag} VERSION`), "
            f"or --remove to delete the rule"
        )
    before = ctx.store.revision()
    if args.remove:
        after = ctx.store.remove_rule(tag, actor=ctx.actor)
        return _changed(
            ctx, before, after, f"removed the rule for {tag}", f"there is no rule for {tag}"
        )
    after = ctx.store.set_rule(tag, args.version, actor=ctx.actor)
    return _changed(
        ctx,
        before,
        after,
        f"tenants tagged {tag} now get {args.version}",
        f"the rule {tag} -> {args.version} is already set",
    )


def cmd_rollout_start(args: argparse.Namespace, ctx: Context) -> int:
    """Start rolling out a version to a share of tenants (a fresh salt picks which)."""
    before = ctx.store.revision()
    rollout = rollout_controller(args, ctx).start(
        args.version,
        plan=args.plan,
        percent=args.percent,
        every=args.every,
        auto=args.auto,
        salt=args.salt,
    )
    after = ctx.store.revision()
    points = rollout.percent
    if rollout.gated:
        ctx.print(
            f"{args.version} needs a data migration: tenants move once "
            f"`{ctx.command()} rollout run --app ...` has migrated them"
        )
    return _changed(
        ctx,
        before,
        after,
        f"started the rollout of {args.version} at {format_percent(points)}",
        "the rollout was not started",
    )


def cmd_rollout_set(args: argparse.Namespace, ctx: Context) -> int:
    """Set the running rollout's percentage (raising it only ever adds tenants)."""
    points = parse_percent(args.percent)
    before = ctx.store.revision()
    rollout_controller(args, ctx).set(args.percent)  # lowering keeps tenants by the ratchet
    after = ctx.store.revision()
    rollout = ctx.store.policy().rollout
    candidate = rollout.candidate if rollout is not None else "the candidate"
    return _changed(
        ctx,
        before,
        after,
        f"the rollout of {candidate} is now at {format_percent(points)}",
        f"the rollout of {candidate} is already at {format_percent(points)}",
    )


# --- the demo --------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    """Serve the bundled demo (see :mod:`cohortroute.demo`) until Ctrl-C."""
    from .demo import DEFAULT_STORE, run_demo

    # Only an explicit --store counts: $COHORTROUTE_STORE may name a real store, and the demo
    # registers its own versions and seeds tenants.
    url = getattr(args, "store", None) or DEFAULT_STORE
    return run_demo(host=args.host, port=args.port, store_url=url, out=ctx.out, err=ctx.err)


# --- the rollout controller and the tenant registry (issue 5) --------------------------------
# The verbs of cohortroute.rollout.RolloutController; see docs/rollouts.md.


def _plan(text: str) -> tuple[str, ...]:
    """``--plan 1,5,25,50,100``: percent steps (validated at once: a bad one exits 2)."""
    steps = tuple(p.strip() for p in text.split(",") if p.strip())
    if not steps:
        raise argparse.ArgumentTypeError("give the steps as percentages, like 1,5,25,50,100")
    for step in steps:
        _percent(step)
    return steps


def _duration(text: str) -> float:
    """``--every 2h``: seconds, or a number with s, m, h or d."""
    from .rollout import parse_duration

    try:
        return parse_duration(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_app(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="your Migrations object (or a callable returning it), e.g. myapp.migrations:"
        "migrations; needed when the candidate's tenant data must be migrated",
    )


def _add_settle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before lowering or finalizing: how long routers get to record the tenants they "
        "just served (default: 1 s plus twice the store's refresh interval)",
    )


def _add_runner_options(parser: argparse.ArgumentParser) -> None:
    _add_app(parser)
    parser.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="N", help="tenants at a time"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait between marking a tenant migrating (503) and touching its data; at least "
        "the routers' refresh interval plus the longest request (default: 2 x refresh)",
    )
    _add_settle(parser)
    _add_json(parser)


def _add_rollout_controller_verbs(actions: Any) -> None:
    """``rollout advance/preview/halt/resume/run/rollback/finalize``."""
    p = add_command(actions, "advance", cmd_rollout_advance, "move to the plan's next step")
    p.add_argument("--force", action="store_true", help="advance before the minimum dwell")

    p = add_command(
        actions,
        "preview",
        cmd_rollout_preview,
        "exactly which registered tenants move at the next step (a dry run)",
    )
    p.add_argument(
        "--percent", type=_percent, default=None, metavar="P", help="preview this percentage"
    )
    _add_json(p)

    p = add_command(actions, "halt", cmd_rollout_halt, "freeze the rollout where it is")
    p.add_argument("--reason", default=None, help="why (shown by status and history)")

    add_command(actions, "resume", cmd_rollout_resume, "continue a halted rollout")

    p = add_command(
        actions,
        "run",
        cmd_rollout_run,
        "migrate the tenants the rollout has reached (gated rollouts), with a progress bar",
        description=(
            "Migrate every tenant the rollout has reached whose data is not there yet, and "
            "resume migrations a killed runner left. Runs until the rollout ends (for timed "
            "plans), or one pass with --once (for cron). Exits 1 when a tenant failed."
        ),
    )
    _add_runner_options(p)
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--interval", type=float, default=30.0, metavar="SECONDS", help="between passes")
    p.add_argument(
        "--max-failures",
        type=int,
        default=5,
        metavar="N",
        help="halt the rollout when more than N tenants fail in one pass (default 5)",
    )
    p.add_argument("--retry-failed", action="store_true", help="retry tenants that failed")

    p = add_command(
        actions,
        "rollback",
        cmd_rollout_rollback,
        "move everybody (or --tenant T) back to the default version",
    )
    p.add_argument("--tenant", metavar="TENANT", default=None, help="only this tenant")
    p.add_argument(
        "--force", action="store_true", help="move back even where a downgrade step is missing"
    )
    _add_runner_options(p)

    p = add_command(
        actions,
        "finalize",
        cmd_rollout_finalize,
        "everybody to the candidate, which becomes the default",
    )
    p.add_argument(
        "--force", action="store_true", help="remove pins and tag rules to the old default"
    )
    _add_runner_options(p)


def _add_tenants(commands: Any) -> None:
    """The ``tenants`` group: the registry the rollout controller works on."""
    actions = add_group(
        commands,
        "tenants",
        "import or add tenants to the registry",
        "The tenant registry: routers record the tenants they serve; import or add the others.",
    )
    p = add_command(
        actions,
        "import",
        cmd_tenants_import,
        "import tenants: one per line, or CSV name,tag,tag... (- reads stdin)",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=50_000,
        metavar="N",
        help="tenants per transaction (default 50000)",
    )
    p = add_command(actions, "add", cmd_tenants_add, "add one tenant (with tags)")
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="repeatable")


def load_migrations(spec: str | None) -> Any:
    """``--app module:attr`` -> the Migrations it names (None without ``--app``).

    The attribute may be a :class:`~cohortroute.migrations.Migrations`, an object with a
    ``migrations`` attribute, or a callable returning one. The current directory is importable,
    as with gunicorn.
    """
    if spec is None:
        return None
    import importlib

    from .migrations import Migrations

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--app wants MODULE:ATTR, like myapp.migrations:migrations; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--app {spec}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--app {spec}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not isinstance(target, Migrations):
        target = getattr(target, "migrations", target)
    if not isinstance(target, Migrations) and callable(target):
        target = target()
    if not isinstance(target, Migrations):
        raise UsageError(
            f"--app {spec} is a {type(target).__name__}, not cohortroute.migrations.Migrations"
        )
    return target


def rollout_controller(args: argparse.Namespace, ctx: Context) -> Any:
    """The controller for a command, with its ``--app``, ``--drain`` and ``--settle``."""
    from .rollout import RolloutController

    return RolloutController(
        ctx.store,
        migrations=load_migrations(getattr(args, "app", None)),
        actor=ctx.actor,
        drain=getattr(args, "drain", None),
        settle=getattr(args, "settle", None),
    )


class _Progress:
    """A one-line progress bar on a terminal (nothing when stderr is not one)."""

    def __init__(self, err: TextIO, total: int, label: str) -> None:
        self.err, self.total, self.label = err, total, label
        self.done = self.failed = 0
        self.enabled = total > 0 and err.isatty()

    def __call__(self, result: Any) -> None:
        self.done += 1
        self.failed += bool(result.failed)
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            self.err.write(f"\r{self.label} [{bar}] {self.done}/{self.total}, {self.failed} failed")
            if self.done == self.total:
                self.err.write("\n")
            self.err.flush()


def _report(args: argparse.Namespace, ctx: Context, result: Any) -> int:
    if getattr(args, "json", False):
        ctx.emit_json(result.to_json())
    else:
        ctx.print(result.summary())
    return EXIT_OK if result.ok else EXIT_ERROR


def cmd_rollout_advance(args: argparse.Namespace, ctx: Context) -> int:
    """Move the rollout to its plan's next step."""
    rollout = rollout_controller(args, ctx).advance(force=args.force)
    ctx.print(
        f"the rollout of {rollout.candidate} is now at {format_percent(rollout.percent)} "
        f"(step {rollout.step + 1} of {len(rollout.plan)}; revision {ctx.store.revision()})"
    )
    return EXIT_OK


def cmd_rollout_preview(args: argparse.Namespace, ctx: Context) -> int:
    """Exactly which tenants move at the next step (or at --percent), before anything moves."""
    preview = rollout_controller(args, ctx).preview(args.percent)
    if args.json:
        ctx.emit_json(preview.to_json())
        return EXIT_OK
    lines = [
        f"{format_percent(preview.from_percent)} -> {format_percent(preview.to_percent)}: "
        f"{preview.count} of {preview.considered} registered tenants move"
    ]
    if preview.migrate:
        lines.append(f"  ({len(preview.migrate)} of them once `rollout run` migrated their data)")
    lines.extend(f"  {name}" for name in preview.moves)
    if preview.stays:
        lines.append("not moving although their bucket is in range:")
        lines.extend(f"  {name}: {why}" for name, why in sorted(preview.stays.items()))
    ctx.print(*lines)
    return EXIT_OK


def cmd_rollout_halt(args: argparse.Namespace, ctx: Context) -> int:
    """Freeze the rollout: nobody new moves, nobody leaves the candidate."""
    rollout = rollout_controller(args, ctx).halt(args.reason)
    ctx.print(
        f"the rollout of {rollout.candidate} is halted at {format_percent(rollout.percent)}; "
        f"`{ctx.command()} rollout resume` continues it"
    )
    return EXIT_OK


def cmd_rollout_resume(args: argparse.Namespace, ctx: Context) -> int:
    """Continue a halted rollout."""
    rollout = rollout_controller(args, ctx).resume()
    ctx.print(f"the rollout of {rollout.candidate} continues at {format_percent(rollout.percent)}")
    return EXIT_OK


def cmd_rollout_run(args: argparse.Namespace, ctx: Context) -> int:
    """Migrate the tenants the rollout has reached; loop until it ends, or --once."""
    controller = rollout_controller(args, ctx)
    failed = passes = False
    while True:
        if passes and controller.current() is None:  # finalized or rolled back meanwhile
            ctx.print("the rollout ended")
            return EXIT_ERROR if failed else EXIT_OK
        pending = controller.pending(retry_failed=args.retry_failed)
        progress = _Progress(ctx.err, len(pending), "migrating")
        try:
            result = controller.run(
                concurrency=args.concurrency,
                max_failures=args.max_failures,
                retry_failed=args.retry_failed,
                progress=progress,
            )
        except ConflictError:
            if not passes or controller.current() is not None:
                raise
            continue  # the rollout ended between the check and the run
        passes = True
        failed |= not result.ok
        if args.once or result.halted:
            code = _report(args, ctx, result)
            return EXIT_ERROR if failed else code
        if result.results:
            ctx.print(result.summary())
        time.sleep(args.interval)


def cmd_rollout_rollback(args: argparse.Namespace, ctx: Context) -> int:
    """Move everybody (or one tenant) back to the default, data included."""
    result = rollout_controller(args, ctx).rollback(
        args.tenant, force=args.force, concurrency=args.concurrency
    )
    return _report(args, ctx, result)


def cmd_rollout_finalize(args: argparse.Namespace, ctx: Context) -> int:
    """Everybody to the candidate; the candidate becomes the default."""
    controller = rollout_controller(args, ctx)
    result = controller.finalize(force=args.force, concurrency=args.concurrency)
    return _report(args, ctx, result)


def cmd_tenants_import(args: argparse.Namespace, ctx: Context) -> int:
    """Import tenants from a file (one per line, or CSV with tags); '-' reads stdin."""
    controller = rollout_controller(args, ctx)
    source: Any = sys.stdin if args.file == "-" else args.file
    if source is not sys.stdin and not os.path.isfile(source):
        raise UsageError(f"no such file: {args.file}")
    before = ctx.store.revision()
    new = controller.import_tenants(source, batch_size=args.batch_size)
    after = ctx.store.revision()
    return _changed(
        ctx, before, after, f"imported {new} new tenants", "every tenant was already registered"
    )


def cmd_tenants_add(args: argparse.Namespace, ctx: Context) -> int:
    """Add one tenant (and tags) to the registry."""
    name = check_tenant_name(args.tenant)
    before = ctx.store.revision()
    rollout_controller(args, ctx).add_tenant(name, args.tag)
    after = ctx.store.revision()
    return _changed(ctx, before, after, f"registered {name}", f"{name} is already registered")

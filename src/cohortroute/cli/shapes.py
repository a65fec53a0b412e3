"""What every ``--json`` output holds: one documented shape per command, and the shared objects.

A command's ``--json`` option is registered with its :class:`JsonShape`
(:func:`cohortroute.cli.options.add_json`), and the CLI reference in docs/cli.md is generated
from these (:mod:`cohortroute.cli.reference`), so an output cannot gain a key the reference does
not explain. Every percentage is a number of percent; every store URL is redacted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JsonShape:
    """The keys of one JSON output, each with what it holds, in output order.

    ``summary`` names the output (the reference heads shared objects with it).
    """

    summary: str
    keys: tuple[tuple[str, str], ...]


ROLLOUT_OBJECT = JsonShape(
    "The rollout object",
    (
        ("candidate", "the version being rolled out"),
        ("percent", "the share, in percent (`12.5`), as routers apply it now"),
        ("salt", "the bucketing salt"),
        ("started_at", "when it started, Unix seconds"),
        ("plan", "planned steps in percent (`[1.0, 5.0, 25.0]`; `[]` without a plan)"),
        (
            "step",
            "index of the current step in `plan` (`-1` without a plan); a timed plan "
            "moves on by the clock without a write",
        ),
        ("every", "seconds per step, or `null`"),
        ("step_started_at", "when the current step began, Unix seconds"),
        ("halted", "`true` when the rollout is frozen"),
        ("auto", "`true` for a timed plan: it moves on every `every` seconds by itself"),
        ("gated", "`true` when a tenant is served the candidate only once its data migrated"),
        ("halt_reason", "why a halted rollout was halted, else `null`"),
        ("next_change", "when a timed plan next moves by itself, Unix seconds, else `null`"),
    ),
)

RUN_RESULT = JsonShape(
    "The result of `rollout run`, `rollback` and `finalize`.",
    (
        ("action", "`run`, `rollback` or `finalize`"),
        ("ok", "`false` when a tenant failed or the operation could not complete (exit 1)"),
        ("completed", "`false` when it stopped before the end"),
        ("halted", "why the rollout was halted by this run, else `null`"),
        ("note", "a sentence about the outcome (may be empty)"),
        ("moved", "the tenants moved"),
        ("failed", "the failed tenants' results (as in `results`)"),
        (
            "results",
            "per tenant: `tenant`, `outcome` (`moved`, `unchanged`, `failed`, `busy`, "
            "`refused`...), `from`, `to`, `error`, `duration` (seconds)",
        ),
    ),
)

STATUS = JsonShape(
    "`status --json`",
    (
        ("store", "the store URL (credentials replaced by `***`)"),
        ("revision", "the store's revision: +1 per change"),
        ("default", "the default version, `null` before a router registered one"),
        ("versions", "known versions, sorted (retired ones included)"),
        ("retired", "retired versions, sorted"),
        ("rules", 'tag rules in precedence order: `{"tag", "version"}`'),
        ("rollout", "`null`, or the rollout object"),
        ("tenants.stored", "tenants with a stored record"),
        ("tenants.by_version", "version -> stored tenants it serves (every known version)"),
        (
            "tenants.by_reason",
            "reason -> stored tenants (`pin`, `tag`, `rollout`, `default`; `backend` for those a "
            "custom backend given with `--assign` decides)",
        ),
    ),
)

EXPLAIN = JsonShape(
    "`explain --json`",
    (
        ("tenant", "the tenant, lower-cased"),
        ("version", "the version a router serves it"),
        (
            "reason",
            "`pin`, `tag`, `rollout`, `default`, `backend` (a custom backend given with "
            "`--assign` decided) or `unmounted` (not mounted where served)",
        ),
        ("detail", "the decision's one-line explanation"),
        ("bucket", "its bucket 0..9999 in the running rollout, else `null`"),
        ("default", "the store's default version"),
        ("pin", "its pin, else `null`"),
        ("tags", "its tags, sorted"),
        ("ratchet", "the version the ratchet keeps it on, else `null`"),
        ("rollout", "`null`, or the rollout object"),
        ("maintenance", "`true` while its data is migrated (or a migration failed): 503"),
        ("revision", "the store revision the answer was read at"),
        ("hints", "sentences on what would change it (wording may change; do not parse)"),
    ),
)

HISTORY = JsonShape(
    "`history --json`",
    (
        ("entries", "audit entries, newest first, each with the keys below"),
        ("entries[].revision", "the revision the change created"),
        ("entries[].at", "when, Unix seconds"),
        ("entries[].time", "when, ISO 8601 UTC"),
        ("entries[].actor", "who (`--actor`, `$USER`, `cohortroute-router`...)"),
        ("entries[].action", "`pin`, `tag`, `tags-import`, `rule`, `rollout-set`, ..."),
        ("entries[].tenant", "the tenant changed, `null` for global changes"),
        (
            "entries[].before / after",
            'the values replaced and written: a version, a tag list, `"tag -> version"`, a '
            "percentage or a rollout object (percentages in percent)",
        ),
    ),
)

PREVIEW = JsonShape(
    "`rollout preview --json`",
    (
        ("candidate", "the version being rolled out"),
        ("default", "the default version"),
        ("from_percent", "the share now, in percent"),
        ("to_percent", "the share previewed, in percent"),
        ("step", "the plan step previewed, else `null`"),
        ("count", "how many registered tenants move"),
        ("moves", "the tenants that move, sorted"),
        ("migrate", "those of them that move once `rollout run` migrated their data"),
        ("stays", "tenant -> why it does not move although its bucket is in range"),
        ("kept", "those of them the ratchet keeps on the candidate (only a rollback moves them)"),
        ("considered", "how many registered tenants were considered"),
    ),
)

ROLLOUT_STATUS = JsonShape(
    "`rollout status --json`",
    (
        ("default", "the default version"),
        ("rollout", "`null`, or the rollout object"),
        ("tenants.registered", "tenants in the registry"),
        ("tenants.ratchet", "tenants the ratchet keeps on the candidate"),
        ("tenants.migrated", "tenants whose data is at the candidate"),
        ("tenants.migrating", "tenants being migrated now (their requests get 503)"),
        ("tenants.held", "tenants rolled back from this rollout (they stay on the default)"),
        ("failed", "tenant -> `failed: ERROR` or `broken: ERROR` for failed migrations"),
        (
            "migrating",
            'tenant -> `{"owner", "expires"}` for tenants being migrated: the runner holding '
            "its lease and until when (Unix time; both `null` when none holds it)",
        ),
    ),
)

VERSIONS = JsonShape(
    "`versions --json`",
    (
        ("default", "the default version"),
        ("versions", "one object per known version, sorted by name, with the keys below"),
        ("versions[].version", "the version"),
        ("versions[].default", "`true` for the default"),
        ("versions[].retired", "`true` once retired (`versions retire`)"),
        ("versions[].retired_at", "when it was retired, Unix seconds, else `null`"),
        ("versions[].mounted_at", "when a router last started mounting it, else `null`"),
        ("versions[].mounted_host", "the host name of that router, else `null`"),
        ("versions[].mounted_pid", "its process id, else `null`"),
        ("versions[].uses", "what names it: `default`, `rollout`, `rule:TAG`, `pins:N`"),
    ),
)

OBJECTS = (ROLLOUT_OBJECT,)
"""Objects several outputs share; the reference documents them once."""

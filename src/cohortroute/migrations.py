"""Per-tenant data migrations, declared next to the app: Magento-style upgrade/downgrade steps.

Each version of the app says which *module versions* its data needs, and each module has
numbered upgrade steps (and, ideally, the matching downgrade steps)::

    from cohortroute.migrations import Migrations

    migrations = Migrations(retry_after=30)
    migrations.version("2026.11", notes=1)
    migrations.version("2026.12", notes=2, billing=1)

    @migrations.upgrade(2, module="notes")
    def split_title(tenant: str) -> None: ...          # notes 1 -> 2, on one tenant's data

    @migrations.downgrade(2, module="notes")
    def join_title(tenant: str) -> None: ...           # notes 2 -> 1

A version that declares nothing needs nothing; a module a version does not name is at 0. With a
single module, ``migrations.version("2026.12", 2)`` and ``@migrations.upgrade(2)`` use the
module ``"app"``. Every step receives the tenant name and works on that tenant's data only.

A step should be atomic (one database transaction) or idempotent: the runner records each
completed step in the tenant's record, so a rerun skips what is done and a crashed run resumes
with the step it was in. The runner itself -- leases, batches, the flip -- is
:class:`cohortroute.rollout.RolloutController`; this module only *declares* and *plans*.

A step that declares a second parameter (without a default, or annotated ``StepContext``) also
receives a :class:`StepContext`: its ``token`` is the lease's fencing token, to pass to the
app's own write (``... WHERE fence <= :token``), so a runner that was paused past its lease
cannot change the data once another runner took over::

    @migrations.upgrade(3)
    def backfill(tenant: str, step: StepContext) -> None:
        with db.transaction():
            claimed = db.execute(
                "UPDATE tenants SET fence = :token WHERE name = :tenant AND fence <= :token",
                token=step.token, tenant=tenant,
            ).rowcount
            if not claimed:
                raise LeaseLostError(f"a newer runner owns {tenant}")
            ...  # the step's writes, committed only together with the claim

``docs/rollouts.md`` ("What a step must do to be safe") has the whole pattern.

While a tenant migrates, the router answers its requests with 503 and ``Retry-After``
(configurable here; the responses are in :mod:`cohortroute.router.responses`).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .errors import ConfigurationError, ConflictError
from .policy import check_version_name

StepFn = Callable[[str], None] | Callable[[str, "StepContext"], None]
"""A migration step: called with the tenant name (and, when it declares a second parameter, its
:class:`StepContext`), changes that tenant's data, raises on failure."""

S = TypeVar("S", bound=StepFn)

DEFAULT_MODULE = "app"


class LeaseLostError(ConflictError):
    """This runner no longer holds the tenant's lease: another runner owns its migration now.

    :meth:`StepContext.check` raises it; a step may raise it too when the app's own fenced
    write was refused. The runner then leaves the tenant to the runner that holds it.
    """


class StepContext:
    """What a running step knows about its lease: pass ``token`` to the app's own writes.

    ``token`` is the lease's generation (an integer that goes up each time a runner takes the
    tenant): a write made conditional on it (``WHERE fence <= :token``, then ``fence =
    :token``) is refused by the app's database once a newer runner took over. Long steps call
    :meth:`check` between batches.
    """

    __slots__ = ("_still_ours", "step", "tenant", "token")

    def __init__(
        self, tenant: str, token: int, step: MigrationStep, still_ours: Callable[[], bool]
    ) -> None:
        self.tenant = tenant
        self.token = token
        self.step = step
        self._still_ours = still_ours

    def still_ours(self) -> bool:
        """True while this runner's lease on the tenant is current (one store read)."""
        return self._still_ours()

    def check(self) -> None:
        """Raise :class:`LeaseLostError` unless the lease is still ours."""
        if not self.still_ours():
            raise LeaseLostError(
                f"the lease on {self.tenant} (generation {self.token}) was lost to another "
                "runner; stop touching its data"
            )

    def __repr__(self) -> str:
        return f"StepContext({self.tenant!r}, token={self.token}, step={str(self.step)!r})"


def run_step(run: StepFn, tenant: str, context: StepContext) -> None:
    """Call a step with the tenant name, and its context when it declares a second parameter."""
    if _takes_context(run):
        run(tenant, context)  # type: ignore[call-arg]
    else:
        run(tenant)  # type: ignore[call-arg]


def _takes_context(fn: Callable[..., Any]) -> bool:
    """True when ``fn``'s second positional parameter asks for the context: it has no default
    (``def step(tenant, fence)``) or is annotated with :class:`StepContext` (``step:
    StepContext | None = None``, a step the app also calls itself). ``def step(tenant, k=k)``
    is the closure idiom, not a request."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: the historical call
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    candidates = [p for p in parameters if p.kind in positional]
    if len(candidates) < 2:
        return False
    second = candidates[1]
    return second.default is inspect.Parameter.empty or "StepContext" in str(second.annotation)


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """One step of a tenant's migration: module ``module`` goes up to, or down from, ``number``.

    ``run`` is None for a downgrade nobody declared; :meth:`Migrations.steps_between` keeps such
    steps so the caller can refuse (or, forced, skip) them knowingly. Not to be confused with a
    rollout's percent steps (*ramp* steps, :data:`cohortroute.policy.RampPlan`).
    """

    module: str
    number: int
    direction: Literal["up", "down"]
    run: StepFn | None

    @property
    def after(self) -> int:
        """The module's number once this step is done."""
        return self.number if self.direction == "up" else self.number - 1

    def __str__(self) -> str:
        arrow = f"{self.number - 1} -> {self.number}"
        if self.direction == "down":
            arrow = f"{self.number} -> {self.number - 1}"
        return f"{self.module} {arrow}"


class Migrations:
    """The migration steps of one app, per module, and the module versions each version needs.

    :param retry_after: seconds a client is told to wait (``Retry-After``) while its tenant
        migrates.
    :param maintenance_body: the body of that 503 response.
    :param snapshot: optional ``snapshot(tenant) -> token`` taken before a tenant migrates; when
        a step fails, ``restore(tenant, token)`` puts the data back instead of running the
        downgrade steps (for example a copy of the tenant's SQLite file).
    :param restore: see ``snapshot``; both or neither.
    :param discover: optional ``discover() -> tenant names`` listing every tenant that has data;
        the controller registers them before running, so ``finalize`` migrates tenants no router
        has served yet.
    """

    def __init__(
        self,
        *,
        retry_after: int = 30,
        maintenance_body: str = (
            "503 Service Unavailable: this account is being upgraded; try again in a moment.\n"
        ),
        snapshot: Callable[[str], Any] | None = None,
        restore: Callable[[str, Any], None] | None = None,
        discover: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        if not isinstance(retry_after, int) or retry_after < 0:
            raise ConfigurationError("retry_after must be a whole number of seconds >= 0")
        if (snapshot is None) != (restore is None):
            raise ConfigurationError("give both snapshot= and restore=, or neither")
        self.retry_after = retry_after
        self.maintenance_body = maintenance_body
        self.snapshot = snapshot
        self.restore = restore
        self.discover = discover
        self._versions: dict[str, dict[str, int]] = {}
        self._modules: list[str] = []
        self._up: dict[tuple[str, int], StepFn] = {}
        self._down: dict[tuple[str, int], StepFn] = {}
        # Where it was declared, so routers can tell operators which --app to pass.
        self._declared_in: str | None = sys._getframe(1).f_globals.get("__name__")

    # --- declaring ----------------------------------------------------------------------------

    def version(self, name: str, number: int | None = None, /, **modules: int) -> None:
        """Declare the module versions app version ``name`` needs (``number`` for module "app")."""
        check_version_name(name)
        wanted = dict(modules)
        if number is not None:
            wanted[DEFAULT_MODULE] = number
        for module, value in wanted.items():
            if not isinstance(value, int) or value < 0:
                raise ConfigurationError(
                    f"module {module!r} of version {name!r} needs a whole number >= 0, "
                    f"got {value!r}"
                )
            self._module(module)
        self._versions[name] = wanted

    def upgrade(self, number: int, module: str = DEFAULT_MODULE) -> Callable[[S], S]:
        """Decorator: the step that takes ``module`` from ``number - 1`` to ``number``."""
        return self._register(self._up, number, module, "upgrade")

    def downgrade(self, number: int, module: str = DEFAULT_MODULE) -> Callable[[S], S]:
        """Decorator: the step that takes ``module`` from ``number`` back to ``number - 1``."""
        return self._register(self._down, number, module, "downgrade")

    def _register(
        self, table: dict[tuple[str, int], StepFn], number: int, module: str, kind: str
    ) -> Callable[[S], S]:
        if not isinstance(number, int) or number < 1:
            raise ConfigurationError(f"a {kind} step number is a whole number >= 1, not {number!r}")
        self._module(module)

        def decorator(fn: S) -> S:
            if (module, number) in table:
                raise ConfigurationError(f"{kind} {module} {number} is declared twice")
            table[(module, number)] = fn
            return fn

        return decorator

    def _module(self, module: str) -> None:
        if not isinstance(module, str) or not module.isidentifier():
            raise ConfigurationError(f"a module name is a Python identifier, not {module!r}")
        if module not in self._modules:
            self._modules.append(module)

    # --- reading ------------------------------------------------------------------------------

    @property
    def origin(self) -> str | None:
        """``MODULE:ATTR`` naming this object, as ``--app`` takes it; None when it cannot be
        imported that way (declared in ``__main__``, or not a module-level name)."""
        module_name = self._declared_in
        module = sys.modules.get(module_name or "")
        if module is None or module_name == "__main__":
            return None
        for name, value in vars(module).items():
            if value is self:
                return f"{module_name}:{name}"
        return None

    @property
    def versions(self) -> list[str]:
        """The versions declared so far."""
        return list(self._versions)

    def modules_for(self, version: str) -> dict[str, int]:
        """The module versions ``version`` needs (non-zero ones only; undeclared: none)."""
        return {m: n for m, n in self._versions.get(version, {}).items() if n}

    def needs_migration(self, from_version: str, to_version: str) -> bool:
        """True when a tenant's data must change to go from one version to the other."""
        return self.modules_for(from_version) != self.modules_for(to_version)

    def check(self) -> None:
        """Raise ConfigurationError when a declared version needs an upgrade nobody wrote."""
        for version, modules in self._versions.items():
            for module, top in modules.items():
                missing = [n for n in range(1, top + 1) if (module, n) not in self._up]
                if missing:
                    raise ConfigurationError(
                        f"version {version!r} needs {module} {top}, but no upgrade is declared "
                        f"for {module} {', '.join(map(str, missing))}: add "
                        f"@migrations.upgrade({missing[0]}, module={module!r})"
                    )

    def steps_between(
        self, current: Mapping[str, int], target: Mapping[str, int]
    ) -> list[MigrationStep]:
        """The steps from module versions ``current`` to ``target``, in the order to run them.

        Downgrades first (modules in reverse declaration order, highest number first), then
        upgrades (declaration order, lowest number first), so modules declared later may depend
        on earlier ones. A missing downgrade appears with ``run=None``.
        """
        steps: list[MigrationStep] = []
        for module in reversed(self._modules):
            have, want = current.get(module, 0), target.get(module, 0)
            for n in range(have, want, -1):
                steps.append(MigrationStep(module, n, "down", self._down.get((module, n))))
        for module in self._modules:
            have, want = current.get(module, 0), target.get(module, 0)
            for n in range(have + 1, want + 1):
                fn = self._up.get((module, n))
                if fn is None:
                    raise ConfigurationError(
                        f"no upgrade is declared for {module} {n}: add "
                        f"@migrations.upgrade({n}, module={module!r})"
                    )
                steps.append(MigrationStep(module, n, "up", fn))
        for module in set(current) | set(target):
            if module not in self._modules and current.get(module, 0) != target.get(module, 0):
                raise ConfigurationError(
                    f"tenant data mentions module {module!r}, which these migrations do not "
                    "declare; load the migrations of the app that wrote it"
                )
        return steps

    #: The former name of :meth:`steps_between`.
    plan = steps_between

    def reverse(self, step: MigrationStep) -> MigrationStep:
        """The step that undoes ``step`` (its ``run`` is None when nobody declared it)."""
        key = (step.module, step.number)
        if step.direction == "up":
            return MigrationStep(step.module, step.number, "down", self._down.get(key))
        return MigrationStep(step.module, step.number, "up", self._up.get(key))


Step = MigrationStep
"""The former name of :class:`MigrationStep`."""

"""Check an assignment backend against the rules every backend must follow.

::

    from cohortroute.testing import check_assignment_backend

    def test_plan_tier_follows_the_rules():
        check_assignment_backend(PlanTier(db), tenants=["acme", "globex"], versions=["v1", "v2"])

It checks that the backend declares a usable ``name``, ``ttl`` and ``timeout``; that it answers
an :class:`~cohortroute.assign.Assignment` or None, naming one of ``versions``; that it is
deterministic (the same state gives the same answer); that a router using it serves every
tenant even when the backend raises; and that :meth:`CohortRouter.invalidate` makes the router
ask it again. A broken rule raises :class:`AssertionError` saying which rule and how to fix it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..assign.backend import Assignment, AssignmentBackend, Query
from ..assign.chain import Chain
from ..errors import ConfigurationError
from ..policy import Policy, TenantRecord


def check_assignment_backend(
    backend: AssignmentBackend,
    *,
    tenants: Iterable[str],
    versions: Sequence[str],
    policy: Policy | None = None,
) -> None:
    """Raise AssertionError when ``backend`` breaks a rule (see the module docstring).

    ``tenants`` are names to ask about (include ones it has an opinion on and ones it has
    none on); ``versions`` the versions it may name.
    """
    try:
        Chain([backend])
    except ConfigurationError as exc:
        raise AssertionError(f"the backend's declarations are not usable: {exc}") from None
    names = list(tenants)
    if not names:
        raise AssertionError("give at least one tenant to ask about")
    state = policy or Policy(default=versions[0], versions=frozenset(versions))
    for tenant in names:
        query = Query(tenant, TenantRecord(tenant), state, state.rollout, versions[0], time.time())
        first = backend.assign(query)
        if first is not None and not isinstance(first, Assignment):
            raise AssertionError(
                f"assign() for {tenant!r} returned {first!r}: return an Assignment or None"
            )
        if first is not None and first.version is not None and first.version not in versions:
            raise AssertionError(
                f"assign() for {tenant!r} named {first.version!r}, not one of {list(versions)}"
            )
        again = backend.assign(query)
        if again != first:
            raise AssertionError(
                f"assign() for {tenant!r} answered {first!r}, then {again!r} for the same state: "
                "a backend must be deterministic until its ttl runs out"
            )
    _check_in_a_router(backend, names, versions)


@dataclass
class _Counting:
    """``inner`` wrapped to count its calls and, when ``fail`` is set, to raise instead."""

    inner: AssignmentBackend
    calls: int = 0
    fail: bool = False
    name: str = field(init=False)
    ttl: float | None = field(init=False)
    timeout: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.ttl, self.timeout = self.inner.name, self.inner.ttl, self.inner.timeout

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("simulated failure")
        return self.inner.assign(query)


def _check_in_a_router(
    backend: AssignmentBackend, names: list[str], versions: Sequence[str]
) -> None:
    from .._clock import ManualClock
    from ..router import CohortRouter

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [])  # type: ignore[operator]
        return [b""]

    counting = _Counting(backend)
    router = CohortRouter(
        dict.fromkeys(versions, app),
        domains=["example.test"],
        assign=[counting],
        register_tenants=False,
        clock=ManualClock(),
    )
    try:
        tenant = names[0]
        router.explain(tenant)
        counting.calls = 0
        router._dispatch.miss(f"{tenant}.example.test")
        before = counting.calls
        router.invalidate(tenant)
        router._dispatch.miss(f"{tenant}.example.test")
        if before and counting.calls == before:
            raise AssertionError("after router.invalidate() the backend was not asked again")
        counting.fail = True
        router.invalidate()
        for name in names:
            decision = router._dispatch.miss(f"{name}.example.test")[0]
            if decision is None or decision.version not in versions:
                raise AssertionError(f"a failing backend left {name!r} without a version")
    finally:
        router.close()

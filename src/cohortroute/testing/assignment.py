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

A request-aware backend (``request_aware = True``) is asked with each of ``requests``
(:class:`~cohortroute.RequestView` objects; one plain ``GET /`` when omitted): the same tenant
and request must give the same answer, and requests through a router using it are served even
when it raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..assign.backend import Assignment, AssignmentBackend, Query
from ..assign.chain import Chain, is_request_aware
from ..assign.request_view import RequestView
from ..decision import Decision
from ..errors import ConfigurationError
from ..policy import Policy, TenantRecord

if TYPE_CHECKING:
    from ..router import CohortRouter


def check_assignment_backend(
    backend: AssignmentBackend,
    *,
    tenants: Iterable[str],
    versions: Sequence[str],
    policy: Policy | None = None,
    requests: Iterable[RequestView] | None = None,
) -> None:
    """Raise AssertionError when ``backend`` breaks a rule (see the module docstring).

    ``tenants`` are names to ask about (include ones it has an opinion on and ones it has
    none on); ``versions`` the versions it may name. ``requests`` are the requests a
    request-aware backend is asked about (include ones it has an opinion on).
    """
    try:
        Chain([backend])
    except ConfigurationError as exc:
        raise AssertionError(f"the backend's declarations are not usable: {exc}") from None
    names = list(tenants)
    if not names:
        raise AssertionError("give at least one tenant to ask about")
    state = policy or Policy(default=versions[0], versions=frozenset(versions))
    aware = is_request_aware(backend)
    views: list[RequestView | None] = [None]
    if aware:
        views = list(requests) if requests is not None else [RequestView()]
        if not views:
            raise AssertionError("give at least one request to ask a request-aware backend about")
    for tenant, view in ((t, v) for t in names for v in views):
        now = time.time()
        query = Query(tenant, TenantRecord(tenant), state, state.rollout, versions[0], now, view)
        asked = f"{tenant!r}" if view is None else f"{tenant!r} and {view!r}"
        first = _ask(backend, query, asked)
        if first is not None and not isinstance(first, Assignment):
            raise AssertionError(
                f"assign() for {asked} returned {first!r}: return an Assignment or None"
            )
        if first is not None and first.version is not None and first.version not in versions:
            raise AssertionError(
                f"assign() for {asked} named {first.version!r}, not one of {list(versions)}"
            )
        again = _ask(backend, query, asked)
        if again != first:
            rule = (
                "a backend must be deterministic until its ttl runs out"
                if view is None
                else "a request-aware backend must give the same request the same answer"
            )
            raise AssertionError(
                f"assign() for {asked} answered {first!r}, then {again!r} for the same state: "
                + rule
            )
    if aware:
        _check_requests_in_a_router(backend, names, versions, views)
    else:
        _check_in_a_router(backend, names, versions)


def _ask(backend: AssignmentBackend, query: Query, asked: str) -> object:
    """``backend``'s answer to ``query``; an AssertionError naming the backend, the query and
    the error when it raises (a router would skip it, losing its opinion on every such query)."""
    try:
        return backend.assign(query)
    except Exception as exc:
        rollout = "no rollout" if query.rollout is None else f"rollout of {query.rollout.candidate}"
        raise AssertionError(
            f"assignment backend {backend.name!r} raised {type(exc).__name__}: {exc} when asked "
            f"about {asked} (default {query.default!r}, {rollout}): it must answer an "
            "Assignment or None; a router skips a backend that raises, so its opinion is lost"
        ) from exc


@dataclass
class _Counting:
    """``inner`` wrapped to count its calls and, when ``fail`` is set, to raise instead."""

    inner: AssignmentBackend
    calls: int = 0
    fail: bool = False
    name: str = field(init=False)
    ttl: float | None = field(init=False)
    timeout: float | None = field(init=False)

    request_aware: bool = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.ttl, self.timeout = self.inner.name, self.inner.ttl, self.inner.timeout
        self.request_aware = is_request_aware(self.inner)

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("simulated failure")
        return self.inner.assign(query)


def _router(counting: _Counting, versions: Sequence[str]) -> CohortRouter:
    from .._clock import ManualClock
    from ..router import CohortRouter

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [])  # type: ignore[operator]
        return [b""]

    return CohortRouter(
        dict.fromkeys(versions, app),
        domains=["example.test"],
        assign=[counting],
        register_tenants=False,
        clock=ManualClock(),
    )


def _check_in_a_router(
    backend: AssignmentBackend, names: list[str], versions: Sequence[str]
) -> None:
    counting = _Counting(backend)
    router = _router(counting, versions)
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


def _check_requests_in_a_router(
    backend: AssignmentBackend,
    names: list[str],
    versions: Sequence[str],
    views: list[RequestView | None],
) -> None:
    counting = _Counting(backend)
    router = _router(counting, versions)
    try:
        for fail in (False, True):
            counting.fail = fail
            for name, view in ((n, v) for n in names for v in views):
                assert view is not None
                environ = _environ(f"{name}.example.test", view)
                body = router(environ, lambda status, headers, exc_info=None: None)
                getattr(body, "close", lambda: None)()
                decision = environ.get("cohortroute.decision")
                if not isinstance(decision, Decision) or decision.version not in versions:
                    failing = "a failing " if fail else "the "
                    raise AssertionError(
                        f"{failing}backend left a request for {name!r} without a version"
                    )
    finally:
        router.close()


def _environ(host: str, view: RequestView) -> dict[str, object]:
    """A WSGI environ for ``view`` sent to ``host``."""
    environ: dict[str, object] = {
        "REQUEST_METHOD": view.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": view.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": view.query_string,
        "SERVER_NAME": "example.test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }
    for name, value in view.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ["HTTP_HOST"] = host
    if view.client is not None:
        environ["REMOTE_ADDR"] = view.client
    return environ

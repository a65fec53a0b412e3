"""The chain of assignment backends every decision goes through.

Order: the test or signed QA **override** always first, then the backends in the order given;
by default ``pin > tag rule > (custom backends) > rollout > default``. ``Chain([plan_tier])``
puts ``plan_tier`` between the tag rules and the rollout; to choose another precedence, name
the built-ins in the list: ``Chain([plan_tier, PIN, TAG, ROLLOUT])`` puts it before pins.

The chain is the same in the router, ``explain``, ``preview`` and the rollout controller, so
they cannot disagree. A backend that raises, answers something that is not an
:class:`~cohortroute.assign.backend.Assignment`, or takes longer than its ``timeout`` is
skipped: the chain goes on, the first error per backend is logged, every one is counted
(:attr:`Chain.errors`, ``router.status()["assign_errors"]``) and the decision lists it in
``errors`` (``explain`` prints it). A decision made without a failed backend's opinion is
cached at most :data:`ERROR_TTL` seconds, so the backend is asked again soon.

A request-aware backend (``request_aware = True``) is skipped when the chain decides: it is
only ever asked with a request. The outcome lists those ranked above the backend that decided
(:attr:`Outcome.per_request`, in precedence order) and the decision's ``detail`` says they may
override it per request; the router asks them on each request of that host
(:mod:`cohortroute.assign.request`). In a gated rollout none is listed: the version follows
the tenant's data, as with signed overrides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, replace

from .. import _forksafe
from ..decision import Decision, Reason, gated, per_request_note
from ..errors import ConfigurationError
from ..policy import Policy, TenantRecord
from ._calls import DaemonCalls
from .backend import Assignment, AssignmentBackend, Query
from .builtin import BUILTINS, PIN, ROLLOUT, TAG

log = logging.getLogger(__name__)

ERROR_TTL = 5.0
"""Seconds a decision made without a failed backend's opinion stays cached."""
MAX_WAITING = 8
"""Calls with a timeout running at once; past it a backend is skipped as busy (a hung backend
cannot pile up threads)."""

_REASONS = {PIN.name: Reason.PIN, TAG.name: Reason.TAG, ROLLOUT.name: Reason.ROLLOUT}


class BackendBusyError(RuntimeError):
    """Too many earlier calls to backends with a timeout are still running."""


class UnmountedVersionError(ValueError):
    """A request-aware backend named a version the router does not mount (its answer is
    ignored and counted like an error)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision and how long it may be cached (seconds; None: until the revision moves).

    ``per_request`` are the request-aware backends ranked above the one that decided, in
    precedence order (to ask on each request), and ``query`` what the chain was asked (None
    for an override or a request with no tenant).

    .. versionadded:: 0.2 ``per_request`` and ``query``.
    """

    decision: Decision
    ttl: float | None
    per_request: tuple[AssignmentBackend, ...] = ()
    query: Query | None = None


class Chain:
    """The ordered assignment backends; see the module docstring for the order rules.

    .. versionadded:: 0.2
    """

    def __init__(self, backends: Iterable[AssignmentBackend] = ()) -> None:
        self.backends: tuple[AssignmentBackend, ...] = _ordered(list(backends))
        #: backend name -> errors and timeouts counted since the start
        self.errors: dict[str, int] = {}
        #: Warn of a backend's first failure in one line, its traceback only at DEBUG: for the
        #: command line, which shows the error itself (``explain``, ``status``). Routers keep
        #: the default, False: the first failure per backend is logged with its traceback.
        self.quiet = False
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self._pool: DaemonCalls | None = None
        self._running = 0
        self.custom = any(b not in BUILTINS for b in self.backends)
        self._steps = tuple((b, is_request_aware(b)) for b in self.backends)
        #: The request-aware backends, in precedence order (asked per request only).
        self.request_aware: tuple[AssignmentBackend, ...] = tuple(
            b for b, aware in self._steps if aware
        )
        #: Whether deciding without a request may wait on a backend (one has a ``timeout``):
        #: an ASGI router then decides its cache misses on a worker thread.
        self.may_block = any(b.timeout is not None for b, aware in self._steps if not aware)
        _forksafe.register(self, after_in_child=Chain._after_fork)

    def __repr__(self) -> str:
        return f"Chain([{', '.join(b.name for b in self.backends)}])"

    def decide(
        self,
        policy: Policy,
        record: TenantRecord | None,
        default: str,
        *,
        override: str | None = None,
        now: float,
    ) -> Outcome:
        """The decision for ``record`` (None: a request with no tenant), gated by migrations."""
        tenant = None if record is None else record.name
        if override is not None:
            forced = Decision(
                tenant,
                override,
                Reason.OVERRIDE,
                detail="forced by a test override",
                backend="override",
            )
            return Outcome(forced, None)
        fallback = policy.default or default
        if record is None:
            return Outcome(
                Decision(None, fallback, Reason.NO_TENANT, detail="request has no tenant"), None
            )
        outcome = self.intended(policy, record, fallback, now=now)
        rollout = policy.rollout
        if rollout is None or not rollout.gated:
            if outcome.per_request:
                noted = _noted(outcome.decision, outcome.per_request)
                return replace(outcome, decision=noted)
            return outcome
        rollout = rollout.at(now)
        return Outcome(gated(rollout, record, fallback, outcome.decision), outcome.ttl)

    def intended(
        self, policy: Policy, record: TenantRecord, default: str, *, now: float
    ) -> Outcome:
        """The decision before migration gating: the first backend with an opinion
        (request-aware backends skipped: they are listed in ``per_request`` when they rank
        above the one that decided)."""
        fallback = policy.default or default
        rollout = policy.rollout
        if rollout is not None and rollout.auto:
            rollout = rollout.at(now)
        query = Query(record.name, record, policy, rollout, fallback, now)
        ttl: float | None = None
        errors: list[str] = []
        declined: Assignment | None = None
        above: list[AssignmentBackend] = []
        for backend, aware in self._steps:
            if aware:
                above.append(backend)
                continue
            answer = self.ask(backend, query, errors)
            if errors and (ttl is None or ttl > ERROR_TTL):
                ttl = ERROR_TTL
            if backend.ttl is not None and (ttl is None or backend.ttl < ttl):
                ttl = backend.ttl
            if answer is None:
                continue
            if answer.version is not None:
                decision = backend_decision(backend, query, answer, tuple(errors))
                return Outcome(decision, ttl, tuple(above), query)
            if backend is ROLLOUT:
                declined = answer
        detail = "no rollout running" if declined is None else declined.detail
        bucket = None if declined is None else declined.bucket
        decision = Decision(
            record.name,
            fallback,
            Reason.DEFAULT,
            bucket=bucket,
            detail=detail,
            backend="default",
            errors=tuple(errors),
        )
        return Outcome(decision, ttl, tuple(above), query)

    def ask(
        self, backend: AssignmentBackend, query: Query, errors: list[str] | None = None
    ) -> Assignment | None:
        """``backend``'s answer to ``query``; None when it has no opinion or failed (then the
        failure is counted, logged the first time, and described in ``errors``)."""
        try:
            answer = self._call(backend, query)
            if answer is not None and not isinstance(answer, Assignment):
                raise TypeError(f"returned {answer!r}, not an Assignment or None")
            return answer
        except Exception as exc:  # a backend never fails a request
            if errors is not None:
                errors.append(f"{backend.name}: {_describe(exc, backend)}")
            self._count(backend, exc)
            return None

    def count_unmounted(self, backend: AssignmentBackend, version: str) -> None:
        """Count a request-aware answer naming a version not mounted here (it is ignored)."""
        self._count(
            backend,
            UnmountedVersionError(f"named version {version!r}, which is not mounted here"),
        )

    def _call(self, backend: AssignmentBackend, query: Query) -> Assignment | None:
        timeout = backend.timeout
        if timeout is None:
            return backend.assign(query)
        with self._lock:
            if self._running >= MAX_WAITING:
                raise BackendBusyError(f"{MAX_WAITING} earlier calls are still running")
            self._running += 1
            if self._pool is None:
                self._pool = DaemonCalls(MAX_WAITING, "cohortroute-assign")
            pool = self._pool
        future = pool.submit(backend.assign, query)
        future.add_done_callback(self._finished)
        return future.result(timeout)

    def _finished(self, _: Future[Assignment | None]) -> None:
        with self._lock:
            self._running -= 1

    def _count(self, backend: AssignmentBackend, exc: Exception) -> None:
        with self._lock:
            self.errors[backend.name] = self.errors.get(backend.name, 0) + 1
            first = backend.name not in self._logged
            self._logged.add(backend.name)
        if first:
            plain = isinstance(exc, TimeoutError | BackendBusyError | UnmountedVersionError)
            log.warning(
                "cohortroute: assignment backend %r failed (%s); its opinion is skipped and "
                "the chain goes on.%s",
                backend.name,
                _describe(exc, backend),
                ""
                if self.quiet
                else " Further errors are only counted (router.status()['assign_errors']).",
                exc_info=not (plain or self.quiet),
            )
            if self.quiet and not plain:
                log.debug("assignment backend %r failed", backend.name, exc_info=exc)

    def close(self) -> None:
        """Stop waiting for backends still running (their threads end when they return)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _after_fork(self) -> None:
        # The parent's pool threads do not exist in the child.
        self._lock = threading.Lock()
        self._pool = None
        self._running = 0


def is_request_aware(backend: object) -> bool:
    """Whether ``backend`` asks to be asked per request (``request_aware = True``)."""
    return getattr(backend, "request_aware", False) is True


def _noted(decision: Decision, backends: tuple[AssignmentBackend, ...]) -> Decision:
    """``decision`` saying which request-aware backends may override it per request."""
    note = per_request_note([b.name for b in backends])
    detail = f"{decision.detail}; {note}" if decision.detail else note
    return replace(decision, detail=detail)


def _describe(exc: Exception, backend: AssignmentBackend) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within its timeout of {backend.timeout}s"
    return f"{type(exc).__name__}: {exc}"


def backend_decision(
    backend: AssignmentBackend, query: Query, answer: Assignment, errors: tuple[str, ...]
) -> Decision:
    """The decision ``answer`` from ``backend`` makes (reason, detail and the backend named)."""
    version = answer.version
    assert version is not None
    reason = _REASONS.get(backend.name, Reason.BACKEND) if backend in BUILTINS else Reason.BACKEND
    detail = answer.detail or answer.reason or f"{backend.name} -> {version}"
    if reason is Reason.BACKEND and answer.reason and answer.detail:
        detail = f"{answer.reason}: {answer.detail}"
    return Decision(
        query.tenant,
        version,
        reason,
        bucket=answer.bucket,
        detail=detail,
        backend=backend.name,
        errors=errors,
    )


def _ordered(backends: list[AssignmentBackend]) -> tuple[AssignmentBackend, ...]:
    for backend in backends:
        _check(backend)
    names = [b.name for b in backends]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(
            f"assign= names the backend {', '.join(twice)} more than once; give each a name "
            "of its own (its `name` attribute)"
        )
    for backend in backends:
        if backend.name in _REASONS and backend not in BUILTINS:
            raise ConfigurationError(
                f"a custom assignment backend may not be named {backend.name!r}: that is a "
                "built-in's name; choose another"
            )
    placed = [b for b in BUILTINS if b in backends]
    if not placed:
        return (PIN, TAG, *backends, ROLLOUT)
    missing = [b.name for b in BUILTINS if b not in backends]
    if missing:
        raise ConfigurationError(
            "assign= places some built-in backends but not "
            f"{', '.join(missing)}: list all of PIN, TAG and ROLLOUT (from cohortroute.assign) "
            "to choose the precedence, or none of them for pin > tag > yours > rollout"
        )
    return tuple(backends)


def _check(backend: object) -> None:
    if isinstance(backend, type):
        raise ConfigurationError(
            f"assignment backend {backend.__name__} is a class: give an instance, "
            f"{backend.__name__}() (its assign(query) is called on the object)"
        )
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not name or name in ("override", "default"):
        raise ConfigurationError(
            f"assignment backend {backend!r} needs a `name`: a short word such as 'plan-tier' "
            "(not 'override' or 'default')"
        )
    if not callable(getattr(backend, "assign", None)):
        raise ConfigurationError(f"assignment backend {name!r} has no assign(query) method")
    for attr in ("ttl", "timeout"):
        if not hasattr(backend, attr):
            raise ConfigurationError(
                f"assignment backend {name!r} has no `{attr}` attribute: give it one, None or a "
                "number of seconds >= 0 (see docs/assignment.md, Writing a backend)"
            )
        value = getattr(backend, attr)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise ConfigurationError(
                f"assignment backend {name!r}: `{attr}` must be None or a number of seconds "
                f">= 0, not {value!r}"
            )
    aware = getattr(backend, "request_aware", False)
    if not isinstance(aware, bool):
        raise ConfigurationError(
            f"assignment backend {name!r}: `request_aware` must be True or False, not {aware!r}"
        )
    if getattr(backend, "timeout", None) == 0:
        raise ConfigurationError(f"assignment backend {name!r}: `timeout` must be > 0 or None")


DEFAULT_CHAIN = Chain()
"""The chain with only the built-in backends: what :func:`cohortroute.decide` uses."""

"""Request-aware assignment backends at request time: the per-request wrappers.

The router caches each host's decision as usual, made without the request-aware backends. Only
when one of them ranks above the backend that decided does the cached entry's target become a
:class:`RequestAwareWSGI` or :class:`RequestAwareASGI`: on each request it builds a
:class:`~.request_view.RequestView`, asks just those backends in precedence order, and serves
the first version one names; with no opinion it serves the cached decision. So tenant traffic
pays nothing when no request-aware backend is configured (or none outranks the decision), and
one wrapped host pays a view and a call per backend.

A failing or slow backend is skipped and counted as in the chain; one naming a version the
router does not mount is ignored (the request gets the cached decision) and counted too
(``router.status()["assign_errors"]``). Under ASGI a backend with a ``timeout`` is called on a
worker thread, so the event loop keeps serving while it thinks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import anyio.to_thread

from .._clock import Clock
from .._types import Receive, Scope, Send, StartResponse, WSGIEnvironment
from ..decision import Decision
from .backend import Assignment, AssignmentBackend, Query
from .chain import Chain, backend_decision
from .request_view import RequestView

DECISION_KEY = "cohortroute.decision"


class PerRequest:
    """Asks the request-aware backends ranked above a cached decision, for one request.

    The wrappers are one object per cached host (``app`` is the cached decision's target), so
    a wrapped host costs a few hundred bytes more than a plain one.
    """

    __slots__ = ("_backends", "_chain", "_clock", "_query", "_targets", "app", "decision")

    def __init__(
        self,
        app: Any,
        chain: Chain,
        backends: tuple[AssignmentBackend, ...],
        query: Query,
        decision: Decision,
        targets: Mapping[str, Any],
        clock: Clock,
    ) -> None:
        self.app = app
        self._chain = chain
        self._backends = backends
        self._query = query
        self.decision = decision
        self._targets = targets
        self._clock = clock

    @property
    def backends(self) -> tuple[AssignmentBackend, ...]:
        """The request-aware backends asked, in precedence order."""
        return self._backends

    def _asked(self, view: RequestView) -> Query:
        q = self._query
        return Query(q.tenant, q.record, q.policy, q.rollout, q.default, self._clock.time(), view)

    def decide(self, view: RequestView) -> tuple[Decision, Any] | None:
        """The decision and app for this request, or None to serve the cached decision."""
        query = self._asked(view)
        errors: list[str] = []
        for backend in self._backends:
            found = self._found(backend, query, self._chain.ask(backend, query, errors), errors)
            if found is not None:
                return found
        return None

    async def decide_async(self, view: RequestView) -> tuple[Decision, Any] | None:
        """:meth:`decide` for an event loop: a backend with a timeout runs on a worker thread."""
        query = self._asked(view)
        errors: list[str] = []
        ask = self._chain.ask
        for backend in self._backends:
            if backend.timeout is None:
                answer = ask(backend, query, errors)
            else:
                answer = await anyio.to_thread.run_sync(ask, backend, query, errors)
            found = self._found(backend, query, answer, errors)
            if found is not None:
                return found
        return None

    def _found(
        self,
        backend: AssignmentBackend,
        query: Query,
        answer: Assignment | None,
        errors: list[str],
    ) -> tuple[Decision, Any] | None:
        if answer is None or answer.version is None:
            return None
        target = self._targets.get(answer.version)
        if target is None:
            self._chain.count_unmounted(backend, answer.version)
            return None
        decision = backend_decision(backend, query, answer, tuple(errors))
        return decision, target


class RequestAwareWSGI(PerRequest):
    """``app`` (the cached decision's) unless a request-aware backend names another version."""

    __slots__ = ()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self.decide(RequestView.from_environ(environ))
        if found is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        environ[DECISION_KEY], app = found
        return app(environ, start_response)  # type: ignore[no-any-return]


class RequestAwareASGI(PerRequest):
    """The ASGI form of :class:`RequestAwareWSGI`.

    A request it hands to another version gets that version's lifespan state when the router's
    targets pick their own state (as they do with signed overrides or visitor sampling).
    """

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = await self.decide_async(RequestView.from_scope(scope))
        if found is None:
            await self.app(scope, receive, send)
            return
        scope[DECISION_KEY], app = found
        await app(scope, receive, send)

"""The assignment backend protocol: what a backend is asked, and what it answers.

A backend is any object with a ``name``, a ``ttl``, a ``timeout`` and an ``assign(query)``
method. It answers an :class:`Assignment` naming a version, or ``None`` (or an assignment with
``version=None``) for "no opinion", and the chain asks the next one. ``reason`` and ``detail``
are what ``explain`` prints for the decision.

The rules every backend follows (:func:`cohortroute.testing.check_assignment_backend` checks
them): the same query gives the same answer until its ``ttl`` runs out or the router is told
to :meth:`~cohortroute.CohortRouter.invalidate`; it never needs to catch its own errors (the
chain catches them, logs the first, counts them and goes on); it returns quickly or declares a
``timeout``.

**Request-aware backends.** A backend with ``request_aware = True`` is asked per request, with
a read-only view of it in ``query.request`` (a :class:`~.request_view.RequestView`: method,
path, query string, headers, cookies, client address; never None for such a backend). It is
never asked without a request (a cache miss, ``explain``, previews): the router caches the
decision the other backends make and, only when a request-aware backend ranks above the one
that decided, asks the request-aware ones on each request of that host, in precedence order,
before falling back to the cached decision. Its ``ttl`` is not used (its answers are never
cached); its ``timeout`` bounds each call as for any backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..policy import Policy, Rollout, TenantRecord
from .request_view import RequestView


@dataclass(frozen=True, slots=True)
class Assignment:
    """A backend's answer: ``version`` (None: no opinion), a short ``reason`` and a ``detail``.

    ``bucket`` is for backends that bucket tenants (the built-in rollout); leave it None.

    .. versionadded:: 0.2
    """

    version: str | None
    reason: str = ""
    detail: str = ""
    bucket: int | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """What a backend is asked about: one tenant, its stored record, and the policy.

    ``rollout`` is the running rollout as it stands at ``now`` (a timed plan moved on), and
    ``default`` the version served when no backend has an opinion. ``request`` is the request
    being routed, for request-aware backends only (None for every other backend).

    .. versionadded:: 0.2
    """

    tenant: str
    record: TenantRecord
    policy: Policy
    rollout: Rollout | None
    default: str
    now: float
    request: RequestView | None = None


@runtime_checkable
class AssignmentBackend(Protocol):
    """The protocol every assignment backend implements (a plain class is enough).

    A plain attribute or a dataclass field satisfies each property.

    ``name`` identifies it in ``explain``, ``status()`` and logs (a short word such as
    ``plan-tier``). ``ttl`` is how many seconds the router may cache its answer with the host's
    decision (None: until the store's revision moves or :meth:`CohortRouter.invalidate`; 0:
    never cached). ``timeout`` is the longest the router waits for it (None: it is called
    inline, so it must be fast); past it the chain goes on without its opinion. Under an
    ASGI router a cache miss that may ask a backend with a ``timeout`` is decided on a worker
    thread, so the event loop keeps serving meanwhile.

    An optional ``request_aware = True`` attribute makes it a request-aware backend (see the
    module docstring): asked on each request, with ``query.request`` set.

    .. versionadded:: 0.2
    """

    @property
    def name(self) -> str:
        """Identifies the backend in ``explain``, ``status()`` and logs."""
        ...

    @property
    def ttl(self) -> float | None:
        """Seconds its answer may be cached (None: until invalidated; 0: never)."""
        ...

    @property
    def timeout(self) -> float | None:
        """The longest the router waits for an answer (None: called inline)."""
        ...

    def assign(self, query: Query, /) -> Assignment | None:
        """The version for ``query.tenant``, or None for no opinion."""
        ...

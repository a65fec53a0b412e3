"""Helpers for test suites: force the version a router serves, and the store contract suite.

In a test suite, pin every request through a router to one version::

    from cohortroute.testing import force_version

    with force_version(app, "2026.12"):
        client.get("/", headers={"Host": "acme.example.com"})   # served by 2026.12

    with force_version(app, "2026.12", tenant="acme"):           # only acme is forced
        ...

Forcing has the highest precedence (reason ``override``) and is undone when the block ends.
``app`` may be the router itself or middleware around it that keeps the app it wraps as ``.app``
(werkzeug's ``ProxyFix``, most WSGI and ASGI middleware), ``.application`` or ``.wsgi_app``.
With pytest, the ``cohort`` fixture does the same and undoes everything at teardown::

    def test_new_checkout(cohort, client):
        cohort.force(app, "2026.12")

The reusable store contract suite lives in :mod:`cohortroute.testing.contract`;
:func:`check_assignment_backend` checks an assignment backend against the rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..router import CohortRouter
from .assignment import check_assignment_backend

_WRAPPED = ("app", "application", "wsgi_app")  # where middleware keeps the app it wraps
_DEPTH = 20


def router_of(app: object) -> CohortRouter:
    """The :class:`CohortRouter` that ``app`` is, or that the middleware ``app`` wraps.

    Follows ``.app``, ``.application`` and ``.wsgi_app`` (werkzeug's ``ProxyFix``, Starlette's
    and most other middleware keep the wrapped app there).
    """
    found = app
    for _ in range(_DEPTH):
        if isinstance(found, CohortRouter):
            return found
        inner = next((getattr(found, name) for name in _WRAPPED if hasattr(found, name)), None)
        if inner is None or inner is found:
            break
        found = inner
    raise TypeError(
        f"cannot force a version on {type(app).__name__}: it is not a CohortRouter and wraps "
        "none under .app, .application or .wsgi_app. Pass the router itself: keep a reference "
        "to it (router = CohortRouter(...); app = Middleware(router)) and force it"
    )


@contextmanager
def force_version(app: object, version: str, *, tenant: str | None = None) -> Iterator[None]:
    """Serve ``version`` to every request through ``app`` (or only ``tenant``'s) in the block.

    ``app`` is a :class:`CohortRouter` or middleware around one (see :func:`router_of`).
    """
    router = router_of(app)
    previous = router._overrides.force(version, tenant)
    try:
        yield
    finally:
        router._overrides.force(previous, tenant)


class CohortOverrides:
    """Forces versions on routers and remembers how to undo it (the ``cohort`` pytest fixture)."""

    def __init__(self) -> None:
        self._undo: list[tuple[CohortRouter, str | None, str | None]] = []

    def force(self, app: object, version: str, *, tenant: str | None = None) -> None:
        """Serve ``version`` through ``app`` (to every request, or only to ``tenant``); ``app``
        is a :class:`CohortRouter` or middleware around one (see :func:`router_of`)."""
        router = router_of(app)
        previous = router._overrides.force(version, tenant)
        self._undo.append((router, previous, tenant))

    def reset(self) -> None:
        """Undo every force made through this object, newest first."""
        while self._undo:
            router, previous, tenant = self._undo.pop()
            router._overrides.force(previous, tenant)


__all__ = ["CohortOverrides", "check_assignment_backend", "force_version", "router_of"]

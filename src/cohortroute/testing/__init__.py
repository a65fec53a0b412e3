"""Helpers for test suites: force the version a router serves, and the store contract suite.

In a test suite, pin every request through a router to one version::

    from cohortroute.testing import force_version

    with force_version(app, "2026.12"):
        client.get("/", headers={"Host": "acme.example.com"})   # served by 2026.12

    with force_version(app, "2026.12", tenant="acme"):           # only acme is forced
        ...

Forcing has the highest precedence (reason ``override``) and is undone when the block ends.
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


@contextmanager
def force_version(
    router: CohortRouter, version: str, *, tenant: str | None = None
) -> Iterator[None]:
    """Serve ``version`` to every request through ``router`` (or only ``tenant``'s) in the block."""
    previous = router._overrides.force(version, tenant)
    try:
        yield
    finally:
        router._overrides.force(previous, tenant)


class CohortOverrides:
    """Forces versions on routers and remembers how to undo it (the ``cohort`` pytest fixture)."""

    def __init__(self) -> None:
        self._undo: list[tuple[CohortRouter, str | None, str | None]] = []

    def force(self, router: CohortRouter, version: str, *, tenant: str | None = None) -> None:
        """Serve ``version`` through ``router`` (to every request, or only to ``tenant``)."""
        previous = router._overrides.force(version, tenant)
        self._undo.append((router, previous, tenant))

    def reset(self) -> None:
        """Undo every force made through this object, newest first."""
        while self._undo:
            router, previous, tenant = self._undo.pop()
            router._overrides.force(previous, tenant)


__all__ = ["CohortOverrides", "check_assignment_backend", "force_version"]

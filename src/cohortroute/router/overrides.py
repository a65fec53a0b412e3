"""Test overrides: a version forced for one tenant or for every request through one router.

:mod:`cohortroute.testing` (``force_version``, the ``cohort`` fixture) is the public way in;
this is the router's side of it. An override has the highest precedence (reason ``override``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from ..errors import UnknownVersionError
from ..policy import check_tenant_name


class Overrides:
    """Forced versions keyed by tenant (``None``: every request), checked against the mounts.

    ``on_change`` is called after every change, so decisions cached before it are dropped.
    Every tenant a router serves is one DNS label (a ``tenant_resolver``'s answers too), so a
    force for anything else (``"acme.example.com"``, ``"Bad_Name"``) could never match a request
    and is refused rather than silently doing nothing.
    """

    def __init__(self, versions: Collection[str], on_change: Callable[[], None]) -> None:
        self._versions = versions
        self._on_change = on_change
        self._forced: dict[str | None, str] = {}

    def force(self, version: str | None, tenant: str | None = None) -> str | None:
        """Force ``version`` for ``tenant`` (every request when None), or lift the force with
        ``version=None``; returns the previous forced version, to restore it later."""
        if version is not None and version not in self._versions:
            raise UnknownVersionError(version, self._versions)
        if tenant is not None:
            check_tenant_name(tenant)
        key = None if tenant is None else tenant.lower()
        previous = self._forced.get(key)
        if version is None:
            self._forced.pop(key, None)
        else:
            self._forced[key] = version
        self._on_change()
        return previous

    def get(self, tenant: str | None) -> str | None:
        """The version forced for ``tenant`` (lower-case), else the one forced for everybody."""
        forced = self._forced
        if not forced:
            return None
        return forced.get(tenant, forced.get(None))

"""Which store class a URL scheme names: the registry, :func:`open_store` and plugin loading.

A backend registers its schemes by declaring them in its class statement
(``class ToyStore(Store, scheme="toy")``). Built-in backends are imported only when their scheme
is used, so their drivers stay optional; custom ones come from the ``cohortroute.stores`` entry
point group or the modules named in ``COHORTROUTE_PLUGINS``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ._urls import redact

if TYPE_CHECKING:
    from .base import Store

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Store]] = {}
_BUILTIN = {
    "memory": "cohortroute.store.memory",
    "sqlite": "cohortroute.store.sqlite",
    "redis": "cohortroute.store.redis",
    "rediss": "cohortroute.store.redis",
    "postgresql": "cohortroute.store.postgres",
    "postgres": "cohortroute.store.postgres",
}


def register(cls: type[Store], schemes: tuple[str, ...]) -> None:
    """Make ``open_store`` open URLs with these schemes with ``cls``."""
    for name in schemes:
        _REGISTRY[name.lower()] = cls


def known_schemes() -> list[str]:
    """Every URL scheme a store is registered for (built-in and custom)."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def open_store(url: str | Store, *, create: bool = True) -> Store:
    """Return the store a URL names (``memory://``, ``sqlite:///path.db``, ``redis://...``...).

    A :class:`Store` instance is returned as is. An unknown scheme raises ConfigurationError
    listing the known ones. ``create=False`` opens only a store that exists already (a SQLite
    file is never created; a URL's own ``?mode=rwc`` still wins); stores with nothing to
    create ignore it.
    """
    # Imported here: base registers every subclass through this module when it is defined.
    from .base import Store

    if isinstance(url, Store):
        return url
    if not isinstance(url, str) or "://" not in url:
        hint = _missing_slashes_hint(url.strip()) if isinstance(url, str) else ""
        raise ConfigurationError(
            f"store must be a URL like 'sqlite:///state.db' or a Store object, got {url!r}"
            f"{hint}; known schemes: {', '.join(known_schemes())}"
        )
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ConfigurationError(
            f"malformed store URL {redact(url)} ({exc}); an IPv6 host goes in brackets with "
            "its port after them, like redis://[::1]:6379/0"
        ) from None
    cls = _REGISTRY.get(scheme)
    if cls is None and scheme in _BUILTIN:
        importlib.import_module(_BUILTIN[scheme])
        cls = _REGISTRY.get(scheme)
    if cls is None:
        _load_plugins(scheme)
        cls = _REGISTRY.get(scheme)
    if cls is None:
        raise ConfigurationError(
            f"unknown store scheme {scheme!r} in {redact(url)!r}; known schemes: "
            f"{', '.join(known_schemes())}. A custom store registers its scheme with "
            "`class MyStore(Store, scheme='my')` in a module that is imported first: a "
            "'cohortroute.stores' entry point, or COHORTROUTE_PLUGINS=my.module for the CLI."
        )
    if not create and "create" in inspect.signature(cls.from_url).parameters:
        return cls.from_url(url, create=False)  # type: ignore[call-arg]
    return cls.from_url(url)


def _missing_slashes_hint(given: str) -> str:
    """The "did you mean" for a store URL without ``://``: a bare path is a SQLite file; a
    known scheme followed by too few slashes keeps its scheme (``sqlite:/x.db``, ``redis:h``)."""
    if not given:
        return ""
    scheme, colon, rest = given.partition(":")
    if colon and scheme.lower() in known_schemes():
        scheme, rest = scheme.lower(), rest.lstrip("/")
        if scheme == "sqlite":
            return (
                f" (did you mean 'sqlite:///{rest}' (relative) or 'sqlite:////{rest}' (absolute)?)"
            )
        return f" (did you mean '{scheme}://{rest}'?)"
    return f" (did you mean 'sqlite:///{given}'?)"


def _load_plugins(scheme: str) -> None:
    """Import the modules that may define ``scheme``: entry points, then COHORTROUTE_PLUGINS."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="cohortroute.stores"):
        if entry.name.lower() == scheme:
            try:
                entry.load()
            except Exception as exc:
                raise ConfigurationError(
                    f"the store plugin {entry.value!r} for scheme {scheme!r} failed to load: "
                    f"{exc}; reinstall the package that provides it"
                ) from exc
    for module in filter(None, os.environ.get("COHORTROUTE_PLUGINS", "").split(",")):
        try:
            importlib.import_module(module.strip())
        except ImportError as exc:
            raise ConfigurationError(
                f"COHORTROUTE_PLUGINS names {module.strip()!r}, which cannot be imported: {exc}; "
                "fix the name or PYTHONPATH"
            ) from exc

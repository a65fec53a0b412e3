"""The exceptions cohortroute raises; every one derives from :class:`CohortRouteError`.

Each message says what went wrong *and* what to do about it, because the people who read them
are operators in the middle of a rollout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .advice import Advice


class CohortRouteError(Exception):
    """Root of every error cohortroute raises on purpose."""

    #: What to do, for each interface to word its own way (see :mod:`cohortroute.advice`).
    advice: Advice | None = None


class ConfigurationError(CohortRouteError, ValueError):
    """The router, a store URL or an argument is set up wrongly; raised at construction."""


class InvalidHostError(CohortRouteError, ValueError):
    """A Host header that is malformed or not served here; the router answers it with 400."""


class ValidationError(CohortRouteError, ValueError):
    """A state change was refused because an argument is malformed (tenant, tag, percent...)."""


class UnknownVersionError(ValidationError):
    """A pin, rule or rollout names a version the store has never seen."""

    def __init__(self, version: str, known: Iterable[str]) -> None:
        self.version = version
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "(none yet: start a router first)"
        super().__init__(
            f"unknown version {version!r}; known versions: {listed}. "
            "A version becomes known when a router that mounts it starts."
        )


class StoreError(CohortRouteError):
    """The store failed: unreachable, timed out, or holds data this release cannot read."""


class StoreUnavailableError(StoreError):
    """The store could not be reached; check the URL, the server and the network."""


class SchemaError(StoreError):
    """The store was written by a newer (or unknown) cohortroute schema; upgrade cohortroute."""


class ConflictError(CohortRouteError):
    """A state change conflicts with the current state (for example no rollout is running)."""


class ListenError(CohortRouteError):
    """A server (``cohortroute demo``) cannot listen where it was asked to; says what to try."""


class LifespanError(CohortRouteError, RuntimeError):
    """A mounted ASGI version answered ``lifespan.startup.failed`` (or ``shutdown.failed``)
    without raising; the message names the version and quotes its answer."""


def sentence(exc: BaseException) -> str:
    """A driver's error message as one line ending in punctuation, to quote inside ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text[-1] in ".?!" else text + "."


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message, shortened to about ``limit`` characters with its
    closing quote kept (``'aaaa...'``): a bare ``{value!r:.80}`` cut the quote off."""
    text = repr(value)
    if len(text) <= limit:
        return text
    end = text[-1] if text[-1] in "'\"" else ""
    return text[: max(limit - 3 - len(end), 1)] + "..." + end


def listed(items: Sequence[str], limit: int = 10) -> str:
    """``a, b, c and 7 more``: the first ``limit`` of ``items`` named, the rest counted."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

"""The WSGI side of request-level assignment: signed QA overrides.

The router wraps a tenant's cached target in :class:`SignedOverrideWSGI` only when signed
overrides are on, so a router without ``override_keys`` pays nothing per request, and one with
them pays a header look-up. Which tokens count is decided in :func:`.tokens.overridden`, which
the ASGI wrapper (:mod:`.asgi`) shares.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._types import StartResponse, WSGIApp, WSGIEnvironment
from .tokens import OverrideWrapper, overridden, request_token

DECISION_KEY = "cohortroute.decision"


class SignedOverrideWSGI(OverrideWrapper):
    """``app`` for ``decision``, unless the request carries a valid signed override token."""

    __slots__ = ()
    app: WSGIApp

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = request_token(
            environ.get("HTTP_X_COHORTROUTE_OVERRIDE"), environ.get("HTTP_COOKIE")
        )
        if token is None:
            return self.app(environ, start_response)
        decision = overridden(self.keys, token, self.decision, self.clock(), self.only)
        if decision is None:
            return self.app(environ, start_response)
        environ[DECISION_KEY] = decision
        target: WSGIApp = self.targets[decision.version]
        return target(environ, start_response)

"""The WSGI side of request-level assignment: signed QA overrides.

The router wraps a tenant's cached target in :class:`SignedOverrideWSGI` only when signed
overrides are on, so a router without ``override_keys`` pays nothing per request, and one with
them pays a header look-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._types import StartResponse, WSGIApp, WSGIEnvironment
from ..decision import Decision, Reason
from .tokens import OverrideKeys, token_from_cookie

DECISION_KEY = "cohortroute.decision"


class SignedOverrideWSGI:
    """``app`` for ``decision``, unless the request carries a valid signed override token."""

    def __init__(
        self,
        app: WSGIApp,
        decision: Decision,
        keys: OverrideKeys,
        targets: Mapping[str, Any],
        clock: Callable[[], float],
        *,
        only: str | None = None,
    ) -> None:
        self.app = app
        self.decision = decision
        self.keys = keys
        self.targets = targets
        self.clock = clock
        self.only = only  # in a gated rollout a token may not move the tenant off its data

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = environ.get("HTTP_X_COHORTROUTE_OVERRIDE")
        if token is None:
            cookie = environ.get("HTTP_COOKIE")
            token = None if cookie is None else token_from_cookie(cookie)
        if token is None:
            return self.app(environ, start_response)
        decision = self.decision
        grant = self.keys.check(token, decision.tenant, self.clock())
        if grant is None or (self.only is not None and grant.version != self.only):
            return self.app(environ, start_response)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.expires))
        environ[DECISION_KEY] = Decision(
            decision.tenant,
            grant.version,
            Reason.OVERRIDE,
            bucket=decision.bucket,
            detail=f"signed QA override (key {grant.key_id}) until {expires}",
            backend="override",
        )
        target: WSGIApp = self.targets[grant.version]
        return target(environ, start_response)

"""Who is asking: token login, the host application's own auth hook, roles, sessions and CSRF.

Tokens are compared with :func:`hmac.compare_digest`; the session cookie and the CSRF token are
HMACs under a secret that never leaves the process (a random one unless given, so sessions end
when the console restarts).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .._types import WSGIEnvironment
from ..errors import ConfigurationError

log = logging.getLogger(__name__)

READER = "read-only"
OPERATOR = "operator"
ROLES = (READER, OPERATOR)

ENV_TOKENS = "COHORTROUTE_ADMIN_TOKENS"
"""``actor:token,actor:token`` -- the tokens that may log in, read from the environment."""
ENV_OPERATORS = "COHORTROUTE_ADMIN_OPERATORS"
"""``actor,actor`` -- the actors with the operator role; everybody else may only read."""

SESSION_SECONDS = 8 * 3600
"""How long a login lasts."""

AuthHook = Callable[[WSGIEnvironment], "str | None"]
"""The host application's auth: the actor making the request, or None when unauthenticated."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated actor of a request and its role."""

    actor: str
    role: str

    @property
    def can_mutate(self) -> bool:
        """Whether this actor may change the store (the operator role)."""
        return self.role == OPERATOR


def tokens_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The ``actor:token`` pairs of :data:`ENV_TOKENS`, as ``{token: actor}``."""
    found: dict[str, str] = {}
    for item in environ.get(ENV_TOKENS, "").split(","):
        actor, sep, token = item.strip().partition(":")
        if not item.strip():
            continue
        if not sep or not actor or len(token) < 16:
            raise ConfigurationError(
                f"${ENV_TOKENS} must be actor:token pairs separated by commas, each token at "
                "least 16 characters"
            )
        found[token] = actor
    return found


def operators_from_env(environ: Mapping[str, str] = os.environ) -> set[str]:
    """The actors named in :data:`ENV_OPERATORS`."""
    return {a.strip() for a in environ.get(ENV_OPERATORS, "").split(",") if a.strip()}


class Authenticator:
    """Turns a request into a :class:`Principal` (or None) and issues sessions and CSRF tokens."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, str],
        hook: AuthHook | None,
        operators: Iterable[str],
        anonymous: str | None,
        secret: bytes | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if anonymous is not None and anonymous not in ROLES:
            raise ConfigurationError(f"anonymous must be one of {', '.join(ROLES)} or None")
        if not tokens and hook is None and anonymous is None:
            raise ConfigurationError(
                "the admin console needs authentication: give tokens= (or set "
                f"${ENV_TOKENS}) or auth=, or bind it to loopback"
            )
        self._tokens = dict(tokens)
        self._hook = hook
        self._operators = frozenset(operators)
        self._anonymous = anonymous
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock

    @property
    def needs_login(self) -> bool:
        """Whether a login form is offered (tokens are configured)."""
        return bool(self._tokens)

    def role_of(self, actor: str) -> str:
        """The role of ``actor``: operator when named in ``operators``, else read-only."""
        return OPERATOR if actor in self._operators else READER

    def check_token(self, token: str) -> str | None:
        """The actor owning ``token``, compared in constant time against every known token."""
        found = None
        for known, actor in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = actor
        return found

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def session_value(self, actor: str) -> str:
        """A signed cookie value naming ``actor`` until it expires."""
        body = f"{actor}|{int(self._clock()) + SESSION_SECONDS}"
        return f"{body}|{self._sign('session|' + body)}"

    def _from_session(self, value: str) -> str | None:
        body, _, mac = value.rpartition("|")
        actor, _, expires = body.rpartition("|")
        if not hmac.compare_digest(mac, self._sign("session|" + body)):
            return None
        if not expires.isdigit() or int(expires) < self._clock():
            return None
        return actor or None

    def principal(self, environ: WSGIEnvironment, session: str | None) -> Principal | None:
        """Who makes this request: the session, else the hook, else the anonymous role."""
        if session:
            actor = self._from_session(session)
            if actor is not None:
                return Principal(actor, self.role_of(actor))
        if self._hook is not None:
            hooked = self._hook(environ)
            if hooked:
                return Principal(hooked, self.role_of(hooked))
        if self._anonymous is not None:
            return Principal("admin@loopback", self._anonymous)
        return None

    def csrf_token(self, principal: Principal) -> str:
        """The CSRF token every form of ``principal`` carries (bound to the actor)."""
        return self._sign(f"csrf|{principal.actor}")

    def check_csrf(self, principal: Principal, token: str) -> bool:
        """Whether ``token`` is this actor's CSRF token."""
        return hmac.compare_digest(self.csrf_token(principal), token)

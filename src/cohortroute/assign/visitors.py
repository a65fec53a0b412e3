"""Anonymous visitors: a share of the requests with no tenant (apex, ``www``) sampled into a
version, kept through a signed long-lived cookie.

The sample (version, share in basis points, its own salt) is stored in the policy under
``visitors`` and set like a rollout (``cohortroute visitors set VERSION --percent 5``, audited).
A router given a ``visitor_key`` gives each new visitor a random id in the cookie
``__Host-cohortroute_visitor`` (``Secure``, ``HttpOnly``, ``SameSite=Lax``, ``Path=/``; a
``Max-Age`` of about six months by default), signed with HMAC-SHA256 so a visitor cannot choose
an id to pick a version. The visitor gets the version when ``bucket(salt, id) < percent``: the
same visitor keeps its version while the sample stays as it is, raising the share only adds
visitors, and a new salt draws a new sample. Responses on those hosts carry ``Vary: Cookie``.

Only the no-tenant hosts' cached entries are wrapped, and only while a sample is set, so
tenant traffic pays nothing; a visitor arriving on a tenant host follows the tenant. Who is
sampled is decided in :func:`visit`, shared by :class:`VisitorSamplingWSGI` and the ASGI
wrapper (:mod:`.asgi`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._types import StartResponse, WSGIApp, WSGIEnvironment
from ..bucketing import bucket
from ..decision import Decision, Reason
from ..errors import ConfigurationError

COOKIE = "__Host-cohortroute_visitor"
MAX_AGE = 183 * 86400
"""The cookie's default lifetime: about six months."""
DECISION_KEY = "cohortroute.decision"


@dataclass(frozen=True, slots=True)
class VisitorSample:
    """The share of anonymous visitors served ``version``: ``percent`` basis points, ``salt``."""

    version: str
    percent: int
    salt: str

    def to_json(self) -> dict[str, Any]:
        """As stored in the policy."""
        return {"version": self.version, "percent": self.percent, "salt": self.salt}

    @classmethod
    def from_policy(cls, visitors: Mapping[str, Any]) -> VisitorSample | None:
        """The sample stored in a policy's ``visitors``; None when none is set."""
        if not visitors or not visitors.get("version"):
            return None
        return cls(str(visitors["version"]), int(visitors["percent"]), str(visitors["salt"]))


class VisitorCookies:
    """Makes and checks the signed visitor ids (``<id>.<signature>``)."""

    def __init__(self, key: str | bytes, max_age: float = MAX_AGE) -> None:
        secret = key.encode() if isinstance(key, str) else key
        if len(secret) < 16:
            raise ConfigurationError(
                "visitor_key is shorter than 16 bytes; use a random secret, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if max_age <= 0:
            raise ConfigurationError("visitor_cookie_max_age must be a positive number of seconds")
        self._key = secret
        self.max_age = int(max_age)

    def _sign(self, visitor: str) -> str:
        return hmac.new(self._key, f"visitor:{visitor}".encode(), hashlib.sha256).hexdigest()[:32]

    def new(self) -> tuple[str, str]:
        """A fresh visitor id and its signed cookie value."""
        visitor = secrets.token_hex(12)
        return visitor, f"{visitor}.{self._sign(visitor)}"

    def visitor(self, value: str) -> str | None:
        """The visitor id in a cookie value, or None when it is not one we signed."""
        visitor, _, signature = value.partition(".")
        if len(visitor) != 24 or not hmac.compare_digest(self._sign(visitor), signature):
            return None
        return visitor

    def header(self, value: str) -> str:
        """The ``Set-Cookie`` header value for ``value``."""
        return f"{COOKIE}={value}; Max-Age={self.max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


def cookie_value(cookie_header: str, cookie: str = COOKIE) -> str | None:
    """The value of ``cookie`` (the visitor cookie by default) in a ``Cookie`` header value."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == cookie and value:
            return value
    return None


def sampled(sample: VisitorSample, visitor: str) -> int | None:
    """The visitor's bucket when it is in the sample, else None."""
    b = bucket(sample.salt, visitor)
    return b if b < sample.percent else None


def visit(
    sample: VisitorSample, cookies: VisitorCookies, cookie_header: str | None
) -> tuple[Decision | None, str | None]:
    """One anonymous request: the decision serving it the sampled version (None: it is not in
    the sample and keeps its host's), and the ``Set-Cookie`` value giving a new visitor its
    signed id (None when the request carried a valid one).

    A missing, forged or damaged cookie makes a new visitor. Both the WSGI and the ASGI
    wrappers call this, so a visitor gets the same version under either.
    """
    value = None if cookie_header is None else cookie_value(cookie_header)
    visitor = None if value is None else cookies.visitor(value)
    set_cookie = None
    if visitor is None:
        visitor, value = cookies.new()
        set_cookie = cookies.header(value)
    b = sampled(sample, visitor)
    if b is None:
        return None, set_cookie
    decision = Decision(
        None,
        sample.version,
        Reason.BACKEND,
        bucket=b,
        detail=f"visitor bucket {b} < {sample.percent} of 10000",
        backend="visitors",
    )
    return decision, set_cookie


class SamplingWrapper:
    """What the WSGI and ASGI visitor-sampling wrappers hold: the no-tenant host's ``app`` and
    ``decision``, the sample, the cookie signer and every version's target."""

    __slots__ = ("app", "cookies", "decision", "sample", "targets")

    def __init__(
        self,
        app: Any,
        decision: Decision,
        sample: VisitorSample,
        cookies: VisitorCookies,
        targets: Mapping[str, Any],
    ) -> None:
        self.app = app
        self.decision = decision
        self.sample = sample
        self.cookies = cookies
        self.targets = targets


class VisitorSamplingWSGI(SamplingWrapper):
    """``app`` for a no-tenant host, or the sampled version for the visitors in the sample."""

    __slots__ = ()
    app: WSGIApp

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        decision, set_cookie = visit(self.sample, self.cookies, environ.get("HTTP_COOKIE"))
        extra = [("Vary", "Cookie")]
        if set_cookie is not None:
            extra.append(("Set-Cookie", set_cookie))
        app = self.app
        if decision is not None:
            environ[DECISION_KEY] = decision
            app = self.targets[decision.version]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        return app(environ, start)

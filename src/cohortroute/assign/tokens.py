"""Signed QA overrides: a token that serves one tenant one version until it expires.

Off unless the router is given keys (``CohortRouter(..., override_keys={"k1": secret})``).
A token binds the tenant, the version, an expiry (Unix time) and the id of the key that signed
it; it travels in the ``X-Cohortroute-Override`` header or the ``cohortroute_override`` cookie.
Its shape is ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload part))``, made and
checked with the standard library's :mod:`hmac` (constant-time comparison). Several key ids may
be valid at once, so a key is rotated by adding the new one, minting with it, then removing the
old one. A bad, expired or foreign token (another tenant, an unknown key id, a version not
mounted) is ignored -- the request gets its normal decision -- and counted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..decision import Decision, Reason
from ..errors import ConfigurationError
from .visitors import cookie_value

log = logging.getLogger(__name__)

HEADER = "X-Cohortroute-Override"
COOKIE = "cohortroute_override"
MAX_TOKEN = 1024
"""Longer values are not tokens (and are not parsed)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


MIN_KEY_BYTES = 16
"""Secrets shorter than this are refused, by routers (``override_keys``) and by :func:`mint`."""


def check_key_id(key_id: object) -> str:
    """``key_id`` when it is a usable key id: a non-empty word without spaces or control
    characters. Routers and ``override mint`` share the rule, so no token is minted under an
    id no router can be configured with."""
    if (
        not isinstance(key_id, str)
        or not key_id
        or not key_id.isprintable()
        or any(ch.isspace() for ch in key_id)
    ):
        raise ConfigurationError(
            f"override key id {key_id!r} is not usable: give a non-empty word without spaces, "
            "like 'k1' or '2026-12'"
        )
    return key_id


def check_key(key_id: str, key: str | bytes) -> bytes:
    """The secret of ``key_id`` as bytes; refused when the id is not usable
    (:func:`check_key_id`) or the secret is shorter than :data:`MIN_KEY_BYTES`. Routers and
    ``override mint`` share the rule, so no token is minted with a key no router accepts."""
    check_key_id(key_id)
    secret = _key_bytes(key)
    if len(secret) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"override key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes; use a random "
            "secret, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return secret


def mint(key_id: str, key: str | bytes, tenant: str, version: str, expires: float) -> str:
    """A token serving ``tenant`` ``version`` until ``expires`` (Unix time), signed with ``key``.

    Refused (:class:`ConfigurationError`) for a key id or secret no router accepts
    (:func:`check_key`): such a token would be ignored by every router.
    """
    secret = check_key(key_id, key)
    payload = json.dumps(
        {"exp": int(expires), "kid": key_id, "t": tenant.lower(), "v": version},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    signature = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


@dataclass(frozen=True, slots=True)
class Granted:
    """A valid token's grant: ``version`` for the request, signed with ``key_id``."""

    version: str
    key_id: str
    expires: int


class OverrideKeys:
    """The key ids a router accepts tokens from, and the tally of the tokens it saw.

    ``counts`` has ``accepted`` and, per reason a token was ignored, ``bad`` (malformed or
    a wrong signature), ``expired``, ``foreign`` (another tenant, or a key id not configured)
    and ``unmounted`` (a version this router does not serve).
    """

    def __init__(self, keys: Mapping[str, str | bytes], versions: Collection[str]) -> None:
        if not keys:
            raise ConfigurationError(
                "override_keys needs at least one key id -> secret, e.g. {'k1': os.environ["
                "'COHORTROUTE_OVERRIDE_KEY'}}; leave it out to keep signed overrides off"
            )
        self._keys = {key_id: check_key(key_id, key) for key_id, key in keys.items()}
        self._versions = frozenset(versions)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def check(self, token: str, tenant: str | None, now: float) -> Granted | None:
        """The grant of ``token`` for a request to ``tenant`` at ``now``; None (counted) when
        it does not apply."""
        verdict = self._verdict(token, tenant, now)
        with self._lock:
            what = verdict if isinstance(verdict, str) else "accepted"
            self.counts[what] = self.counts.get(what, 0) + 1
        return None if isinstance(verdict, str) else verdict

    def _verdict(self, token: str, tenant: str | None, now: float) -> Granted | str:
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            return "bad"
        body, signature = token.split(".")
        try:
            payload = json.loads(_unb64(body))
            given = _unb64(signature)
        except (ValueError, binascii.Error):
            return "bad"
        if not isinstance(payload, dict):
            return "bad"
        key = self._keys.get(payload.get("kid"))  # type: ignore[arg-type]
        if key is None:
            return "foreign"
        expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            return "bad"
        exp, version, bound = payload.get("exp"), payload.get("v"), payload.get("t")
        if not isinstance(exp, int) or not isinstance(version, str) or not isinstance(bound, str):
            return "bad"
        if exp <= now:
            return "expired"
        if tenant is None or bound != tenant:
            return "foreign"
        if version not in self._versions:
            return "unmounted"
        return Granted(version, str(payload["kid"]), exp)


def token_from_cookie(cookie: str) -> str | None:
    """The override token in a ``Cookie`` header value, if any."""
    return cookie_value(cookie, COOKIE)


def request_token(header: str | None, cookie: str | None) -> str | None:
    """The token a request carries: its ``X-Cohortroute-Override`` header when it has one,
    else the ``cohortroute_override`` cookie in its ``Cookie`` header (both values or None)."""
    if header is not None:
        return header
    return None if cookie is None else token_from_cookie(cookie)


def overridden(
    keys: OverrideKeys, token: str, decision: Decision, now: float, only: str | None = None
) -> Decision | None:
    """The decision a request carrying ``token`` gets instead of ``decision`` (reason
    ``override``), or None when the token does not apply (counted by ``keys``).

    ``only`` is the version a gated rollout keeps the tenant on: a token naming another is
    ignored, so a token never moves a tenant off the version its data is on. Both the WSGI
    and the ASGI wrappers call this, so they accept, refuse and count tokens alike.
    """
    grant = keys.check(token, decision.tenant, now)
    if grant is None or (only is not None and grant.version != only):
        return None
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.expires))
    return Decision(
        decision.tenant,
        grant.version,
        Reason.OVERRIDE,
        bucket=decision.bucket,
        detail=f"signed QA override (key {grant.key_id}) until {expires}",
        backend="override",
    )


class OverrideWrapper:
    """What the WSGI and ASGI signed-override wrappers hold: the cached ``app`` and
    ``decision``, the keys, every version's target, the clock, and ``only`` (in a gated
    rollout a token may not move the tenant off its data)."""

    __slots__ = ("app", "clock", "decision", "keys", "only", "targets")

    def __init__(
        self,
        app: Any,
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
        self.only = only

"""Store URLs: the one redaction of credentials, and the option parsers the stores share.

:func:`redact` is the only place that decides what in a URL is secret; every message, ``repr``
and CLI output that shows a store URL goes through it.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from ..errors import ConfigurationError

log = logging.getLogger(__name__)

MASK = "***"

# scheme://netloc, then the rest; netloc ends at the first '/', '?' or '#'.
_AUTHORITY = re.compile(r"\A(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<netloc>[^/?#]*)")
# Query parameter names that carry credentials (password, passwd, pwd, secret, token, apikey,
# sslpassword, auth, access_key...): matched anywhere in the name, case-insensitively.
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|signature", re.IGNORECASE)


def redact(url: str) -> str:
    """The URL with every credential replaced by ``***``, otherwise exactly as written.

    A password in the user info (``user:pw@``, ``:pw@``) and the value of any query parameter
    whose name looks like a credential (``password``, ``token``, ``secret``, ``key``...) are
    masked. Nothing is re-encoded, so IPv6 hosts keep their brackets and other parameters read
    as they were given.
    """
    head, netloc, rest = "", "", url
    match = _AUTHORITY.match(url)
    if match is not None:
        head, netloc, rest = match["scheme"], match["netloc"], url[match.end() :]
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else netloc
    before, question, after = rest.partition("?")
    if question:
        query, hash_, fragment = after.partition("#")
        after = "&".join(_redact_pair(pair) for pair in query.split("&")) + hash_ + fragment
    return head + netloc + before + question + after


def _redact_pair(pair: str) -> str:
    name, equals, _value = pair.partition("=")
    if equals and _SECRET_NAME.search(unquote(name)):
        return f"{name}={MASK}"
    return pair


# Plain ASCII decimals only: float() would also take "nan", "inf", "1e9", "1_0" and digits of
# other scripts, none of which an operator means as a timeout.
_DECIMAL = re.compile(r"\A[0-9]{1,9}(?:\.[0-9]{1,9})?\Z")

#: The longest wait a URL may ask for: an hour.
MAX_SECONDS = 3600.0


def number_option(
    value: str,
    name: str,
    url: str,
    *,
    minimum: float,
    maximum: float,
    integer: bool = False,
    unit: str = "",
) -> float:
    """Parse a numeric URL option: ASCII digits (with a decimal point unless ``integer``), in
    ``[minimum, maximum]``; anything else is a ConfigurationError that gives the range."""
    number = float(value) if _DECIMAL.match(value) and not (integer and "." in value) else None
    if number is None or not minimum <= number <= maximum:
        kind = "a whole number" if integer else "a number"
        unit = f" {unit}" if unit else ""
        raise ConfigurationError(
            f"invalid {name}={value!r} in {redact(url)}: give {kind} from {minimum:g} to "
            f"{maximum:g}{unit}"
        )
    return number


def seconds_option(value: str, name: str, url: str, *, minimum: float = 0.001) -> float:
    """Parse a URL option that must be a finite number of seconds, at most an hour."""
    return number_option(value, name, url, minimum=minimum, maximum=MAX_SECONDS, unit="seconds")


def bool_option(value: str, name: str, url: str) -> bool:
    """Parse a URL option that must be a yes/no flag (``1/0``, ``true/false``, ``yes/no``)."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"invalid {name}={value!r} in {redact(url)}: give true or false")

"""URL helpers shared by the network stores (Redis, PostgreSQL)."""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError


def redact(url: str) -> str:
    """The URL with its password (in the user info or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else netloc
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        query = [(k, "***" if k == "password" else v) for k, v in query]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    return urlunsplit(parts._replace(netloc=netloc))


def seconds_option(value: str, name: str, url: str) -> float:
    """Parse a URL option that must be a positive, finite number of seconds."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigurationError(
            f"invalid {name}={value!r} in {redact(url)}: give a positive number of seconds"
        )
    return seconds


def bool_option(value: str, name: str, url: str) -> bool:
    """Parse a URL option that must be a yes/no flag (``1/0``, ``true/false``, ``yes/no``)."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"invalid {name}={value!r} in {redact(url)}: give true or false")

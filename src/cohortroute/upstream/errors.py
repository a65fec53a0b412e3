"""The answers a client gets when the upstream cannot be reached or is too slow: 502 and 504.

The body is plain text saying which version, which address and what to check, so the person
who reads it (often the one who deployed the build) knows where to look.
"""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)


def failure(version: str, address: str, exc: Exception) -> tuple[int, str, str]:
    """(status, reason phrase, body) for ``exc`` raised while asking ``address`` for ``version``."""
    if isinstance(exc, httpx.PoolTimeout):
        status, what = 504, "had no free connection in time (every pooled one is busy)"
    elif isinstance(exc, httpx.ConnectTimeout):
        status, what = 504, "did not accept the connection in time"
    elif isinstance(exc, httpx.TimeoutException):
        status, what = 504, "did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        status, what = 502, "refused the connection (is its server running?)"
    else:
        status, what = 502, f"broke off the exchange ({type(exc).__name__})"
    log.warning("upstream %s for version %s %s: %s", address, version, what, exc)
    title = "Gateway Timeout" if status == 504 else "Bad Gateway"
    body = f"{status} {title}: version {version} is served by {address}, which {what}.\n"
    return status, title, body

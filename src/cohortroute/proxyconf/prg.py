"""Apache's ``RewriteMap prg:`` program: one host a line in, one pool a line out, live.

Apache starts it once and keeps it running; each lookup is a host name (lower-cased by the
configuration) and the answer the pool the router would send it to, :data:`BAD_HOST` for a host
the router answers 400, or the maintenance pool. Decisions come from the :class:`Decider`'s
cache, refreshed from the store every refresh interval, so a pin reaches Apache without a
reload. The answer must be one line per lookup, flushed at once, and never an exception.
"""

from __future__ import annotations

import logging
from typing import TextIO

from .decider import MAINTENANCE, Decider

log = logging.getLogger(__name__)

BAD_HOST = "cohortroute_bad_host"


def answer(decider: Decider, host: str) -> str:
    """The pool for ``host``: the router's answer in one word."""
    try:
        status, pool = decider.host(host)
    except Exception:  # a lookup must always be answered, or Apache waits on it
        log.exception("deciding host %r failed", host)
        return "NULL"
    if status == 200 and pool is not None:
        return pool
    return MAINTENANCE if status == 503 else BAD_HOST


def serve(decider: Decider, lines: TextIO, out: TextIO) -> None:
    """Answer ``lines`` until end of input (Apache closes it at shutdown)."""
    for line in lines:
        out.write(answer(decider, line.strip()) + "\n")
        out.flush()

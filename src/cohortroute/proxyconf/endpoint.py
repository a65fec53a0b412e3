"""The decision endpoint: a proxy asks it which pool a request goes to (nginx ``auth_request``,
Traefik's ``forwardAuth``, Caddy's ``forward_auth``).

Any request is answered from the :class:`~.decider.Decider` for its Host (or the header named by
``host_header``, for forward-auth proxies that send the original host in ``X-Forwarded-Host``):
200 with ``X-Cohortroute-Pool``, ``-Version``, ``-Tenant`` and ``-Reason``; a host the router
answers 400 or 503 gets 403 (the status an ``auth_request`` can act on) with
``X-Cohortroute-Status`` saying which. Decisions are cached per host by the router's cache and
refreshed from the store every refresh interval; a warm lookup is one dictionary read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .._types import StartResponse, WSGIEnvironment
from .decider import STATUS_HEADER, Decider

log = logging.getLogger(__name__)


class DecisionEndpoint:
    """The WSGI app answering decisions; ``host_header`` is ``"Host"`` unless the proxy in
    front sends the original host in another header it sets itself."""

    def __init__(self, decider: Decider, host_header: str = "Host") -> None:
        self.decider = decider
        name = host_header.upper().replace("-", "_")
        self._key = "HTTP_HOST" if name == "HOST" else f"HTTP_{name}"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._key != "HTTP_HOST":
            environ = dict(environ, HTTP_HOST=environ.get(self._key, ""))

        def deny(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = status.split(" ", 1)[0]
            if code == "200":
                return start_response(status, headers)
            # auth_request acts on 401/403 only (any other status is its own 500).
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers += [(STATUS_HEADER, code), ("Content-Length", "0")]
            start_response("403 Forbidden", headers)
            return lambda data: None

        body = self.decider(environ, deny)
        close = getattr(body, "close", None)
        if close is not None:
            close()  # the router's 400/503 bodies are not sent: the proxy writes its own
        return []

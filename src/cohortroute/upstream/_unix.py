"""httpcore's synchronous backend, closing a unix socket whose connect failed.

httpcore's own leaves it open (a ``ResourceWarning`` per refused request to a down build, and a
file descriptor until the collector runs); this subclass closes it and raises the same errors.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._backends.sync import SyncStream

log = logging.getLogger(__name__)


class ClosingSyncBackend(httpcore.SyncBackend):
    """:class:`httpcore.SyncBackend` that closes the socket when a unix connect fails."""

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return SyncStream(sock)


def unix_transport(path: str, limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's transport to the unix socket ``path``, with :class:`ClosingSyncBackend`."""
    transport = httpx.HTTPTransport(uds=path, limits=limits, retries=0)
    pool = getattr(transport, "_pool", None)  # httpx exposes no way to pass a backend
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = ClosingSyncBackend()
    return transport

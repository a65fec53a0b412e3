"""The ``Upstream`` value: where a version's server listens, and how long to wait for it.

An :class:`Upstream` is a WSGI app itself (the WSGI router calls it like any version); the ASGI
router mounts :meth:`Upstream.asgi` instead (see :func:`mount`), which also forwards websockets.
Connections are pooled and kept alive per process; a forked child (gunicorn ``--preload``) opens
its own pool, since sockets shared with the parent would interleave two processes' requests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import _forksafe
from .._types import StartResponse, WSGIEnvironment
from ..errors import ConfigurationError
from ..store._urls import redact
from ._lease import Lender, Lent

if TYPE_CHECKING:
    import httpx

    from .asgi import UpstreamASGI

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Address:
    """Where the upstream listens: a TCP ``host:port`` or a unix socket ``path``."""

    scheme: str
    """``http`` or ``https`` (``http`` for a unix socket)."""
    netloc: str
    """``host:port`` (``localhost`` for a unix socket, used in the URL only)."""
    prefix: str
    """A path every forwarded path is appended to ("" for none)."""
    socket_path: str | None
    """The unix socket's path, None for TCP."""

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}"

    def __str__(self) -> str:
        return f"unix:{self.socket_path}" if self.socket_path else self.base_url


def parse_address(url: str) -> Address:
    """``http://host:port[/prefix]``, ``https://...`` or ``unix:/path/to.sock``."""
    if not isinstance(url, str):
        raise ConfigurationError(f"Upstream needs a URL string, not {url!r}")
    if url.startswith("unix:"):
        path = url[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]  # unix:///run/x.sock
        if not path.startswith("/"):
            raise ConfigurationError(
                f"Upstream({url!r}): a unix socket needs an absolute path, "
                "e.g. Upstream('unix:/run/shop-2026.12.sock')"
            )
        return Address("http", "localhost", "", path)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"Upstream({url!r}) is not an upstream address: give http://host:port or "
            "unix:/path/to/server.sock"
        )
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"Upstream({redact(url)!r}): the address takes no user or password (they would not "
            "be sent, and would show in messages); give http://host:port, and keep the build "
            "reachable only by the router: a unix socket (unix:/path/to/server.sock) or a "
            "private network / firewall rule"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"Upstream({url!r}): the address takes no query or fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # None when no port is written: the scheme's default
        raise ConfigurationError(
            f"Upstream({url!r}): the port must be a number from 1 to 65535, "
            "e.g. Upstream('http://127.0.0.1:8001')"
        )
    return Address(parts.scheme, parts.netloc, parts.path.rstrip("/"), None)


class Upstream:
    """A mounted version served by another process at ``url`` (HTTP or a unix socket).

    :param url: ``http://127.0.0.1:8001``, ``https://build-2.internal`` or
        ``unix:/run/shop-2026.12.sock``; a path after the port is prefixed to every request.
        A port outside 1-65535 or a ``user:password@`` is refused (ConfigurationError).
    :param connect_timeout: seconds to wait for a connection (then 504).
    :param read_timeout: seconds to wait for each piece of the response, headers included
        (then 504 before the headers; after them the response is cut off).
    :param write_timeout: seconds to wait for each piece of the request body to be sent.
    :param pool_timeout: seconds a request waits for a free connection when all
        ``max_connections`` are busy (then 504).
    :param max_connections: connections open at once per process (and per event loop).
    :param keepalive_expiry: seconds an idle kept-alive connection is kept.
    :param preserve_host: send the client's ``Host`` (the default: the build may resolve the
        tenant itself); False sends the upstream's own host.

    The request and the response are streamed; hop-by-hop headers are removed;
    ``X-Forwarded-For``/``-Proto``/``-Host`` and ``Forwarded`` are appended to; the router's
    decision goes along as ``X-Cohortroute-Tenant``, ``-Version`` and ``-Reason`` (any such
    header from the client is dropped first, so a client cannot name its tenant).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        write_timeout: float = 60.0,
        pool_timeout: float = 5.0,
        max_connections: int = 100,
        keepalive_expiry: float = 30.0,
        preserve_host: bool = True,
    ) -> None:
        try:
            import httpx  # noqa: F401 - checked here so the mistake shows at start-up
        except ImportError:
            raise ConfigurationError(
                "Upstream needs the httpx package: pip install 'cohortroute[upstream]'"
            ) from None
        self.address = parse_address(url)
        self.url = url
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("write_timeout", write_timeout),
            ("pool_timeout", pool_timeout),
            ("keepalive_expiry", keepalive_expiry),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"Upstream {name} must be seconds > 0, not {value!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigurationError("Upstream max_connections must be an integer >= 1")
        if max_connections < 1:
            raise ConfigurationError("Upstream max_connections must be an integer >= 1")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.write_timeout = float(write_timeout)
        self.pool_timeout = float(pool_timeout)
        self.max_connections = max_connections
        self.keepalive_expiry = float(keepalive_expiry)
        self.preserve_host = preserve_host
        self._clients: Lender[None, httpx.Client] = Lender()
        self._lock = threading.Lock()
        self._asgi: UpstreamASGI | None = None
        _forksafe.register(self, after_in_child=Upstream._after_fork)

    def __repr__(self) -> str:
        return f"Upstream({self.url!r})"

    # --- httpx settings shared by both paths ---------------------------------------------

    def timeout(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def limits(self) -> httpx.Limits:
        import httpx

        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_connections,
            keepalive_expiry=self.keepalive_expiry,
        )

    # --- the WSGI path --------------------------------------------------------------------

    def _new_client(self) -> httpx.Client:
        import httpx

        from ._unix import unix_transport
        from .headers import no_cookie_jar

        path = self.address.socket_path
        transport = (
            unix_transport(path, self.limits())
            if path is not None
            else httpx.HTTPTransport(limits=self.limits(), retries=0)
        )
        client = httpx.Client(
            transport=transport,
            timeout=self.timeout(),
            follow_redirects=False,
            cookies=no_cookie_jar(),
        )
        client.headers.clear()  # no User-Agent, Accept... of httpx's own
        return client

    def client(self) -> httpx.Client:
        """This process's pooled synchronous client (made on first use)."""
        lent = self.borrow()
        self.give_back(lent)
        return lent.client

    def borrow(self) -> Lent[httpx.Client]:
        """The pooled synchronous client for one request; :meth:`give_back` it when the
        response is closed (a :meth:`close` meanwhile waits for that to close the pool)."""
        return self._clients.borrow(None, self._new_client)

    def give_back(self, lent: Lent[httpx.Client]) -> None:
        """The request that borrowed ``lent`` is over (closes a pool retired meanwhile)."""
        retired = self._clients.give_back(lent)
        if retired is not None:
            retired.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        from .wsgi import forward

        return forward(self, environ, start_response)

    # --- the ASGI path --------------------------------------------------------------------

    def asgi(self) -> UpstreamASGI:
        """The ASGI app forwarding to this upstream (HTTP and websockets); one per Upstream."""
        if self._asgi is None:
            from .asgi import UpstreamASGI

            self._asgi = UpstreamASGI(self)
        return self._asgi

    def close(self) -> None:
        """Close this process's pooled connections, the WSGI path's and the ASGI path's.

        Idempotent, and safe while requests are in flight: they finish on their connections,
        which are closed when the last one ends; a later request opens a new pool.
        """
        for _key, client in self._clients.retire():
            client.close()
        if self._asgi is not None:
            self._asgi.close_clients()

    def _after_fork(self) -> None:
        # The parent's sockets must not be used by two processes: drop (not close) them.
        self._lock = threading.Lock()
        self._clients.forget()
        if self._asgi is not None:
            self._asgi.forget_clients()


def mount(apps: Mapping[str, Any], *, asgi: bool) -> dict[str, Any]:
    """``apps`` with every :class:`Upstream` in the form the router's flavour calls: itself
    under WSGI, its :meth:`~Upstream.asgi` app under ASGI."""
    if not asgi:
        return dict(apps)
    return {name: app.asgi() if isinstance(app, Upstream) else app for name, app in apps.items()}


def upstreams_of(apps: Mapping[str, Any]) -> list[Upstream]:
    """The distinct :class:`Upstream` objects among ``apps``, for the router to close."""
    found: dict[int, Upstream] = {}
    for app in apps.values():
        if isinstance(app, Upstream):
            found.setdefault(id(app), app)
    return list(found.values())

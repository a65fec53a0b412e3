"""The WSGI router: the hot path for every version being a WSGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .._types import OptExcInfo, StartResponse, WSGIEnvironment
from ..assign.visitors import VisitorSamplingWSGI
from ..assign.wsgi import SignedOverrideWSGI
from ..errors import ConfigurationError
from ..tenancy import server_host
from ._dispatch import Flavour
from .base import DECISION_KEY, TENANT_KEY, CohortRouter, Interface, is_asgi_app
from .registration import watch_wsgi
from .responses import bad_request_wsgi, maintenance_wsgi

_SERVED_AS_ASGI = (
    "this CohortRouter is a WSGI app (its versions are WSGI apps or Upstreams) but an ASGI "
    "server (uvicorn, hypercorn) is calling it: create it with interface='asgi' to serve it "
    "there, or serve it with a WSGI server (gunicorn)"
)


def _no_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
) -> Callable[[bytes], object]:
    """The default ``start_response``: only an ASGI server calls the router without one."""
    raise TypeError(_SERVED_AS_ASGI)


class WSGICohortRouter(CohortRouter, interface="wsgi"):
    """The WSGI flavour of :class:`CohortRouter` (every mounted version is a WSGI app)."""

    _flavour = Flavour(
        bad_request=bad_request_wsgi,
        maintenance=maintenance_wsgi,
        watch=watch_wsgi,
        signed_override=SignedOverrideWSGI,
        visitor_sampling=VisitorSamplingWSGI,
    )

    def _check_interface(self, interface: Interface) -> None:
        asgi = [name for name, app in self.apps.items() if is_asgi_app(app)]
        if asgi:
            raise ConfigurationError(
                f"interface={interface!r} but versions {', '.join(asgi)} are ASGI apps, which a "
                "WSGI router cannot serve; serve the router with an ASGI server (uvicorn) and "
                "leave interface='auto'"
            )

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse = _no_start_response
    ) -> Iterable[bytes]:
        # start_response's default only lets an ASGI 2 server's one-argument call reach the
        # check below (free on the hot path: it is never read when a WSGI server passes one).
        try:
            host = environ["HTTP_HOST"]  # a subscript is cheaper than .get() on the hot path
        except KeyError:
            if "asgi" in environ:  # an ASGI scope (HTTP_HOST is in every WSGI request with Host)
                raise TypeError(_SERVED_AS_ASGI) from None
            host = ""
        if not host:
            # HTTP/1.0 requests may omit Host (or send it empty, as the ASGI router also
            # accepts); SERVER_NAME is the server's own name then. HTTP/1.1 and later: 400.
            host = (
                server_host(environ.get("SERVER_NAME", ""))
                if environ.get("SERVER_PROTOCOL") == "HTTP/1.0"
                else ""
            )
        read_clock = self._monotonic  # then call: a method-style call on an instance
        now = read_clock()  # attribute is never specialised by CPython
        waited = 0.0  # on the store by this request: a miss waits only what is left of the bound
        if now >= self._next_check:
            self._refresh(now)
            waited = read_clock() - now
        entry = self._entries.get(host)
        if entry is None:
            entry = self._dispatch.miss(host, waited)
        environ[DECISION_KEY], environ[TENANT_KEY], app = entry
        return app(environ, start_response)  # type: ignore[no-any-return]

"""A read-only view of one request, as a request-aware assignment backend sees it.

The same object shape under WSGI and ASGI: ``method``, ``path``, ``query_string``,
``headers`` (case-insensitive), ``cookies`` and ``client`` (the peer's address). It is built
only when a request-aware backend must be asked, holds a reference to the request (the WSGI
environ or ASGI scope) and reads each part on first access, so asking for one header costs a
few microseconds. Nothing in it can change the request.

Backends' own tests build one directly: ``RequestView(headers={"X-Staff": "1"})``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Headers(Mapping[str, str]):
    """Request headers by case-insensitive name (iterated lower-case); read-only.

    A header sent several times reads as its values joined with ``", "`` (``"; "`` for
    ``Cookie``), as a WSGI server joins them. Looking up one header reads only that header (a
    dict look-up in the WSGI environ, a scan of the ASGI header list); the whole set is
    gathered only when iterated.
    """

    __slots__ = ("_all", "_environ", "_raw")

    def __init__(self, items: Mapping[str, str]) -> None:
        self._environ: Mapping[str, Any] | None = None
        self._raw: Iterable[tuple[bytes, bytes]] = ()
        self._all: dict[str, str] | None = {name.lower(): value for name, value in items.items()}

    @classmethod
    def _of_environ(cls, environ: Mapping[str, Any]) -> Headers:
        headers = cls.__new__(cls)
        headers._environ, headers._raw, headers._all = environ, (), None
        return headers

    @classmethod
    def _of_scope(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        headers = cls.__new__(cls)
        headers._environ, headers._raw, headers._all = None, raw, None
        return headers

    def get(self, name: str, default: Any = None) -> Any:
        """The header's value, or ``default`` when the request has none."""
        value = self._lookup(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._gathered())

    def __len__(self) -> int:
        return len(self._gathered())

    def __repr__(self) -> str:
        return f"Headers({self._gathered()!r})"

    def _lookup(self, name: str) -> str | None:
        if self._all is not None:
            return self._all.get(name.lower())
        environ = self._environ
        if environ is not None:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                return environ.get(key) or None
            value = environ.get("HTTP_" + key)
            return None if value is None else str(value)
        wanted = name.lower().encode("latin-1")
        found: str | None = None
        for raw_name, raw_value in self._raw:
            if raw_name.lower() == wanted:
                value = bytes(raw_value).decode("latin-1")
                found = value if found is None else found + _joiner(wanted) + value
        return found

    def _gathered(self) -> dict[str, str]:
        if self._all is None:
            found: dict[str, str] = {}
            environ = self._environ
            if environ is not None:
                for key, value in environ.items():
                    if key.startswith("HTTP_"):
                        found[key[5:].replace("_", "-").lower()] = value
                for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    if environ.get(key):
                        found[key.replace("_", "-").lower()] = environ[key]
            else:
                for raw_name, raw_value in self._raw:
                    name = bytes(raw_name).decode("latin-1").lower()
                    value = bytes(raw_value).decode("latin-1")
                    if name in found:
                        value = found[name] + _joiner(name.encode("latin-1")) + value
                    found[name] = value
            self._all = found
        return self._all


def _joiner(name: bytes) -> str:
    return "; " if name == b"cookie" else ", "


class RequestView:
    """One request, read-only: what a request-aware backend's ``query.request`` holds.

    Build one for a test with keyword arguments (every one optional); the router builds them
    from the request with :meth:`from_environ` (WSGI) and :meth:`from_scope` (ASGI).

    .. versionadded:: 0.2
    """

    __slots__ = ("_cookies", "_environ", "_headers", "_scope")

    def __init__(
        self,
        *,
        method: str = "GET",
        path: str = "/",
        query_string: str = "",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        client: str | None = None,
    ) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self._environ: Mapping[str, Any] | None = None
        self._scope: Mapping[str, Any] | None = {
            "method": method,
            "path": path,
            "query_string": query_string.encode("latin-1"),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs],
            "client": None if client is None else (client, 0),
        }
        self._headers: Headers | None = None
        self._cookies: Mapping[str, str] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestView:
        """The view of a WSGI request (nothing is read until asked for)."""
        view = cls.__new__(cls)
        view._environ, view._scope = environ, None
        view._headers = view._cookies = None
        return view

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> RequestView:
        """The view of an ASGI ``http`` or ``websocket`` request (nothing is read until asked)."""
        view = cls.__new__(cls)
        view._environ, view._scope = None, scope
        view._headers = view._cookies = None
        return view

    @property
    def method(self) -> str:
        """The request method, upper case (``GET`` for a WebSocket handshake)."""
        if self._environ is not None:
            return str(self._environ.get("REQUEST_METHOD", "GET"))
        assert self._scope is not None
        return str(self._scope.get("method", "GET"))

    @property
    def path(self) -> str:
        """The path, percent-decoded (``/billing/``), without the query string."""
        environ = self._environ
        if environ is not None:
            raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            return str(raw).encode("latin-1").decode("utf-8", "replace") or "/"
        assert self._scope is not None
        return str(self._scope.get("path", "/"))

    @property
    def query_string(self) -> str:
        """The raw query string (``a=1&b=2``), empty when there is none."""
        if self._environ is not None:
            return str(self._environ.get("QUERY_STRING", ""))
        assert self._scope is not None
        return bytes(self._scope.get("query_string", b"")).decode("latin-1")

    @property
    def headers(self) -> Headers:
        """The headers, by case-insensitive name."""
        if self._headers is None:
            if self._environ is not None:
                self._headers = Headers._of_environ(self._environ)
            else:
                assert self._scope is not None
                self._headers = Headers._of_scope(self._scope.get("headers", ()))
        return self._headers

    @property
    def cookies(self) -> Mapping[str, str]:
        """The cookies sent (name -> value; the first of a name sent twice wins)."""
        if self._cookies is None:
            header = self.headers.get("cookie")
            self._cookies = _EMPTY if not header else MappingProxyType(_parse_cookies(header))
        return self._cookies

    @property
    def client(self) -> str | None:
        """The peer's address as the server saw it (a proxy's, unless the server is told to
        trust forwarded headers), or None when the server gives none."""
        if self._environ is not None:
            return self._environ.get("REMOTE_ADDR") or None
        assert self._scope is not None
        peer = self._scope.get("client")
        return str(peer[0]) if peer else None

    def __repr__(self) -> str:
        return f"<RequestView {self.method} {self.path}>"


def _parse_cookies(header: str) -> dict[str, str]:
    """``a=1; b="2"`` -> ``{"a": "1", "b": "2"}``: lenient, as browsers send them."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = value
    return cookies

"""Which interface a mounted version speaks (WSGI, ASGI 3, ASGI 2), and how to say it outright.

Told apart by shape: a coroutine function or an object with ``async __call__`` is ASGI 3; a
class whose instances are awaitable (``__await__``, like Starlette's ``HTTPEndpoint``) is called
with ``(scope, receive, send)`` and awaited, so it is ASGI 3 too; a class whose instances have
``async __call__(receive, send)`` is ASGI 2 (``App(scope)`` then awaited); anything else is
WSGI. Where the shape cannot tell (a plain function returning an ASGI 2 instance, a decorated
coroutine function), wrap the app when mounting it::

    CohortRouter(apps={"old": cohortroute.asgi2(old_app), "new": cohortroute.asgi(new_app)}, ...)

``cohortroute.wsgi(app)`` says the opposite. ASGI 2 apps are served through asgiref's
``guarantee_single_callable``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Literal

from asgiref.compatibility import double_to_single_callable
from asgiref.sync import iscoroutinefunction

from .._types import ASGIApp

log = logging.getLogger(__name__)

Kind = Literal["wsgi", "asgi3", "asgi2"]


class Declared:
    """An app mounted with its interface said outright (:func:`asgi`, :func:`asgi2`,
    :func:`wsgi`); the router unwraps it, so it costs nothing per request."""

    __slots__ = ("app", "kind")

    def __init__(self, app: Any, kind: Kind) -> None:
        if not callable(app):
            raise TypeError(f"a version must be a WSGI or ASGI callable, not {app!r}")
        self.app: Any = app.app if isinstance(app, Declared) else app
        self.kind: Kind = kind

    def __call__(self, *args: Any) -> Any:
        return self.app(*args)

    def __repr__(self) -> str:
        return f"cohortroute.{self.kind.replace('asgi3', 'asgi')}({self.app!r})"


def asgi(app: Any) -> Declared:
    """Mount ``app`` as an ASGI 3 app (``await app(scope, receive, send)``).

    .. versionadded:: 0.2
    """
    return Declared(app, "asgi3")


def asgi2(app: Any) -> Declared:
    """Mount ``app`` as an ASGI 2 app (``await app(scope)(receive, send)``).

    .. versionadded:: 0.2
    """
    return Declared(app, "asgi2")


def wsgi(app: Any) -> Declared:
    """Mount ``app`` as a WSGI app (``app(environ, start_response)``).

    .. versionadded:: 0.2
    """
    return Declared(app, "wsgi")


def kind_of(app: object) -> Kind:
    """The interface ``app`` speaks, by its shape (or as declared)."""
    if isinstance(app, Declared):
        return app.kind
    if inspect.isclass(app):
        if hasattr(app, "__await__"):
            return "asgi3"
        return "asgi2" if iscoroutinefunction(getattr(app, "__call__", None)) else "wsgi"  # noqa: B004
    if iscoroutinefunction(app):
        return "asgi3"
    call = getattr(app, "__call__", None)  # noqa: B004 - we need the method, not callable()
    return "asgi3" if call is not None and iscoroutinefunction(call) else "wsgi"


def unwrapped(app: Any) -> Any:
    """The app itself, without a :class:`Declared` around it."""
    return app.app if isinstance(app, Declared) else app


def as_asgi3(app: Any) -> ASGIApp:
    """An ASGI app (ASGI 3 or 2, declared or not) as an ASGI 3 callable."""
    kind = kind_of(app)
    app = unwrapped(app)
    if kind == "asgi2":
        single: ASGIApp = double_to_single_callable(app)  # type: ignore[no-untyped-call]
        return single
    return app  # type: ignore[no-any-return]

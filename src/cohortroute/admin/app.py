"""The operator's console as a WSGI application: routing, authentication, CSRF and headers.

Mount it on a host of its own outside the tenant domains (``admin.ops.example.net``), on a
separate port, or in front of the router with :func:`cohortroute.admin.host_dispatch`; with
``hosts=`` it answers 404 to any other Host, so a tenant's Host never reaches it.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from .._types import StartResponse, WSGIEnvironment
from ..errors import InvalidHostError
from ..rollout import RolloutController
from ..store import Store, open_store
from ..tenancy import parse_host
from .auth import Authenticator, AuthHook, Principal, operators_from_env, tokens_from_env
from .counts import TenantCounts
from .html import Html, bare_page, button, field, form, page, tag

log = logging.getLogger(__name__)

SESSION_COOKIE = "cohortroute_admin"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Sent with every answer: no inline script, never framed, no referrer leaking tenant names."""


@dataclass
class Ctx:
    """One request as a page sees it: who asks, where the console is mounted, its CSRF token."""

    admin: AdminApp
    request: Request
    principal: Principal
    csrf: str

    @property
    def base(self) -> str:
        """The path the console is mounted at (``""`` at the root)."""
        return self.request.script_root

    @property
    def store(self) -> Store:
        """The store the console reads and writes."""
        return self.admin.store

    def controller(self) -> RolloutController:
        """A controller acting as this request's actor, so the audit log names them."""
        return self.admin.controller_for(self.principal.actor)

    def render(
        self,
        title: str,
        body: object,
        *,
        live: bool = False,
        refresh: int | None = None,
        status: int = 200,
    ) -> Response:
        """A page in the console's layout."""
        text = page(
            title=title,
            body=body,
            base=self.base,
            actor=self.principal.actor,
            role=self.principal.role,
            csrf=self.csrf,
            live=live,
            refresh=refresh,
        )
        return Response(text, status=status, content_type="text/html; charset=utf-8")


Handler = Callable[..., Response]


class AdminApp:
    """The operator's console for ``store``: overview, rollout, tenants, signals, audit log.

    :param tokens: ``{token: actor}`` that may log in (default: ``$COHORTROUTE_ADMIN_TOKENS``).
    :param auth: the host application's auth, ``callable(environ) -> actor or None``.
    :param operators: actors with the operator role (default: ``$COHORTROUTE_ADMIN_OPERATORS``);
        everybody else may only read.
    :param anonymous: the role of unauthenticated requests (only for a console bound to
        loopback; :command:`cohortroute admin` sets it there). Without tokens, ``auth`` or
        ``anonymous`` the console refuses to start.
    :param hosts: the Host names the console answers (any other gets 404); None answers any.
    :param secret: the key of session cookies and CSRF tokens (random by default).
    :param controller: builds the :class:`RolloutController` for an actor (to pass the app's
        migrations, a clock...); by default ``RolloutController(store, actor=actor)``.
    :param signals: a signals sink for the signals page (optional; the caller closes it).
        Without one the console opens the sink next to ``store`` on the first signals page,
        keeps it for the next ones and closes it in :meth:`close`.

    :meth:`close` releases what the console opened itself: that sink, and the store when
    ``store`` was given as a URL (a :class:`Store` object is the caller's to close).
    """

    def __init__(
        self,
        store: str | Store,
        *,
        tokens: Mapping[str, str] | None = None,
        auth: AuthHook | None = None,
        operators: Iterable[str] | None = None,
        anonymous: str | None = None,
        hosts: Iterable[str] | None = None,
        secret: bytes | None = None,
        controller: Callable[[str], RolloutController] | None = None,
        signals: Any = None,
        clock: Callable[[], float] = time.time,
        count_every: float = 30.0,
    ) -> None:
        self._owns_store = not isinstance(store, Store)
        self.store = open_store(store)
        self.auth = Authenticator(
            tokens=tokens_from_env() if tokens is None else tokens,
            hook=auth,
            operators=operators_from_env() if operators is None else operators,
            anonymous=anonymous,
            secret=secret,
            clock=clock,
        )
        self.hosts = None if hosts is None else frozenset(parse_host(h) for h in hosts)
        self._controller = controller
        self.signals = signals
        self._sink_lock = threading.Lock()
        self._own_sink: Any = None
        self.clock = clock
        self.counts = TenantCounts(self.store, clock=clock, every=count_every)
        from .routes import ROUTES

        self._routes: dict[tuple[str, str], Handler] = ROUTES

    def signals_sink(self) -> Any:
        """The sink the signals page reads: ``signals``, else the store's own, opened once."""
        if self.signals is not None:
            return self.signals
        with self._sink_lock:
            if self._own_sink is None:
                from ..signals import open_sink

                self._own_sink = open_sink(self.store)
            return self._own_sink

    def close(self) -> None:
        """Close the signals sink and the store this console opened (idempotent; a later
        request opens them again)."""
        with self._sink_lock:
            sink, self._own_sink = self._own_sink, None
        try:
            if sink is not None:
                sink.close()
        finally:
            self.counts.wait()  # a recount still running would use the store being closed
            if self._owns_store:
                self.store.close()

    def controller_for(self, actor: str) -> RolloutController:
        """The controller acting as ``actor``."""
        if self._controller is not None:
            return self._controller(actor)
        return RolloutController(self.store, actor=actor)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            response = Response(
                bare_page(exc.name, exc.description or "", request.script_root),
                status=exc.code or 500,
                content_type="text/html; charset=utf-8",
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if self.hosts is not None and host_name(request.environ) not in self.hosts:
            # The Host check runs before anything else: a tenant's Host learns nothing here.
            raise NotFound()
        path = request.path.rstrip("/") or "/"
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == "/login":
            return self._login(request)
        principal = self.auth.principal(request.environ, request.cookies.get(SESSION_COOKIE))
        if principal is None:
            return self._login_required(request)
        ctx = Ctx(self, request, principal, self.auth.csrf_token(principal))
        if request.method == "POST":
            if not self.auth.check_csrf(principal, request.form.get("csrf", "")):
                return ctx.render(
                    "Refused", "The form was stale or forged: reload and try again.", status=403
                )
            if path == "/logout":
                return self._logout(request)
            if not principal.can_mutate:
                return ctx.render("Refused", "Your role is read-only: ask an operator.", status=403)
        handler, args = self._route(request.method, path)
        return handler(ctx, *args)

    def _route(self, method: str, path: str) -> tuple[Handler, tuple[str, ...]]:
        parts = path.strip("/").split("/")
        wrong_method = False
        for (verb, pattern), handler in self._routes.items():
            want = pattern.strip("/").split("/")
            if len(want) != len(parts):
                continue
            args = []
            for w, p in zip(want, parts, strict=True):
                if w == "*":
                    args.append(p)
                elif w != p:
                    break
            else:
                if verb == method or (verb == "GET" and method == "HEAD"):
                    return handler, tuple(args)
                wrong_method = True
        raise MethodNotAllowed() if wrong_method else NotFound()

    def _static(self, name: str) -> Response:
        if name not in ("admin.css", "admin.js"):
            raise NotFound()
        data = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(data, content_type=kind)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    def _login_form(self, request: Request, message: str = "") -> str:
        note = tag("p", message, role="alert") if message else Html("")
        body = form(
            request.script_root + "/login",
            field(
                "token",
                "Access token",
                "",
                kind="password",
                required="required",
                autocomplete="current-password",
            )
            + button("Log in"),
            None,
        )
        return bare_page("Log in", note + body, request.script_root)

    def _login_required(self, request: Request) -> Response:
        if not self.auth.needs_login:
            return Response("authentication required", status=401, content_type="text/plain")
        status = 401
        return Response(
            self._login_form(request), status=status, content_type="text/html; charset=utf-8"
        )

    def _login(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(self._login_form(request), content_type="text/html; charset=utf-8")
        actor = self.auth.check_token(request.form.get("token", ""))
        if actor is None:
            log.warning("cohortroute admin: a login with an unknown token was refused")
            return Response(
                self._login_form(request, "That token is not valid."),
                status=401,
                content_type="text/html; charset=utf-8",
            )
        response = Response(status=303, headers={"Location": request.script_root + "/"})
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.session_value(actor),
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
            path=request.script_root + "/",
        )
        return response

    def _logout(self, request: Request) -> Response:
        response = Response(status=303, headers={"Location": request.script_root + "/login"})
        response.delete_cookie(SESSION_COOKIE, path=request.script_root + "/")
        return response


def host_name(environ: WSGIEnvironment) -> str | None:
    """The request's normalised Host (no port, IPv6 in brackets), None when it is malformed."""
    try:
        return parse_host(str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""))
    except InvalidHostError:
        return None


def host_dispatch(
    admin: AdminApp, app: Callable[..., Any], host: str
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """Serve ``admin`` on exactly ``host`` and everything else with ``app`` (the router).

    ``host`` should lie outside the tenant domains; a tenant's Host is always given to ``app``.
    """
    wanted = parse_host(host)

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = admin if host_name(environ) == wanted else app
        result: Iterable[bytes] = target(environ, start_response)
        return result

    return dispatch

"""Request-aware assignment backends (asked per request with a read-only view of it), and an
ASGI router deciding a miss that waits on a slow backend off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import anyio.to_thread
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client, EnvironBuilder

from cohortroute import (
    PIN,
    ROLLOUT,
    TAG,
    Assignment,
    AssignmentBackend,
    CohortRouter,
    ConfigurationError,
    Query,
    RequestView,
    RolloutController,
)
from cohortroute._clock import ManualClock
from cohortroute.assign.tokens import mint
from cohortroute.policy import Policy
from cohortroute.testing import check_assignment_backend

from .apps import communicator

NOW = 1_790_000_000.0


@dataclass
class Group:
    """Request-aware: requests whose ``X-Group`` header lists ``name`` get ``version``."""

    name: str
    version: str
    request_aware: bool = True
    ttl: float | None = None
    timeout: float | None = None
    calls: int = 0
    seen: list[RequestView] = field(default_factory=list)

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        assert query.request is not None, "a request-aware backend is only asked with a request"
        self.seen.append(query.request)
        groups = query.request.headers.get("x-group", "").split(",")
        if self.name in groups:
            return Assignment(self.version, "group", f"in group {self.name}")
        return None


@dataclass
class Listed:
    """Not request-aware: ``answers[tenant]``, counting its calls."""

    name: str
    answers: dict[str, str] = field(default_factory=dict)
    ttl: float | None = None
    timeout: float | None = None
    calls: int = 0

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        assert query.request is None
        version = self.answers.get(query.tenant)
        return None if version is None else Assignment(version, "listed", f"{self.name} list")


def wsgi_app(name: str) -> Any:
    """Answers ``<name> <version> <reason> <backend>`` from the decision it was handed."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        d = environ["cohortroute.decision"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {d.version} {d.reason} {d.backend}".encode()]

    return app


def asgi_app(name: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: the router leaves it out
        d = scope["cohortroute.decision"]
        body = f"{name} {d.version} {d.reason} {d.backend}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_router(*backends: AssignmentBackend, **kwargs: Any) -> CohortRouter:
    return CohortRouter(
        {v: wsgi_app(v) for v in ("v1", "v2", "v3")},
        domains=["example.com"],
        assign=list(backends),
        register_tenants=False,
        clock=kwargs.pop("clock", ManualClock(wall=NOW)),
        **kwargs,
    )


def asgi_router(*backends: AssignmentBackend, **kwargs: Any) -> CohortRouter:
    return CohortRouter(
        {v: asgi_app(v) for v in ("v1", "v2", "v3")},
        domains=["example.com"],
        assign=list(backends),
        register_tenants=False,
        clock=ManualClock(wall=NOW),
        **kwargs,
    )


def get(router: CohortRouter, host: str, **headers: str) -> str:
    sent = {"Host": host, **{k.replace("_", "-"): v for k, v in headers.items()}}
    response = Client(router, use_cookies=False).get("/", headers=sent)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def scope_for(host: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(b"host", host.encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.7", 50000),
    }


async def aget(router: Any, host: str, headers: dict[str, str] | None = None) -> str:
    comm = communicator(router, scope_for(host, headers))
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(5)
    assert start["status"] == 200
    body = await comm.receive_output(5)
    await comm.wait(5)
    return str(body["body"].decode())


# --- the request view --------------------------------------------------------------------------


def test_the_view_has_the_same_shape_under_wsgi_and_asgi() -> None:
    headers = {"X-Staff": "yes", "Cookie": 'a=1; b="two"; a=ignored', "Accept": "*/*"}
    environ = EnvironBuilder(
        path="/caf%C3%A9/x", query_string="q=1&r=2", method="POST", headers=list(headers.items())
    ).get_environ()
    environ["REMOTE_ADDR"] = "10.0.0.7"
    scope = scope_for("acme.example.com", headers)
    scope.update(method="POST", path="/café/x", query_string=b"q=1&r=2")
    built = RequestView(
        method="POST", path="/café/x", query_string="q=1&r=2", headers=headers, client="10.0.0.7"
    )
    for view in (RequestView.from_environ(environ), RequestView.from_scope(scope), built):
        assert (view.method, view.path, view.query_string) == ("POST", "/café/x", "q=1&r=2")
        assert view.headers["x-staff"] == view.headers["X-STAFF"] == "yes"
        assert "X-Staff" in view.headers and "x-nothing" not in view.headers
        assert view.headers.get("x-nothing") is None
        gathered = dict(view.headers)  # iterated: every header, lower-case names
        assert {k: gathered[k] for k in ("x-staff", "accept")} == {
            "x-staff": "yes",
            "accept": "*/*",
        }
        assert len(view.headers) == len(gathered) and "x-staff" in list(view.headers)
        assert dict(view.cookies) == {"a": "1", "b": "two"}
        assert view.client == "10.0.0.7"


def test_the_view_cannot_change_the_request() -> None:
    environ = EnvironBuilder(headers=[("X-Staff", "yes"), ("Cookie", "a=1")]).get_environ()
    view = RequestView.from_environ(environ)
    with pytest.raises(AttributeError):
        view.method = "DELETE"  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.headers["x-staff"] = "no"  # type: ignore[index]
    with pytest.raises(TypeError):
        view.cookies["a"] = "2"  # type: ignore[index]
    assert environ["HTTP_X_STAFF"] == "yes" and environ["HTTP_COOKIE"] == "a=1"


def test_a_header_sent_twice_reads_joined_and_a_missing_client_is_none() -> None:
    scope = scope_for("acme.example.com")
    scope["headers"] += [(b"x-group", b"a"), (b"X-Group", b"b"), (b"cookie", b"c=1")]
    scope["headers"] += [(b"cookie", b"d=2")]
    del scope["client"]
    view = RequestView.from_scope(scope)
    assert view.headers["x-group"] == "a, b"
    assert dict(view.headers)["x-group"] == "a, b" and dict(view.headers)["cookie"] == "c=1; d=2"
    assert dict(view.cookies) == {"c": "1", "d": "2"}
    assert view.client is None
    assert RequestView().cookies == {} and RequestView().path == "/"


# --- routing with request-aware backends (WSGI) ------------------------------------------------


def test_a_request_aware_backend_decides_per_request_over_the_cached_decision() -> None:
    staff = Group("staff", "v2")
    plan = Listed("plan", {"acme": "v3"})
    router = wsgi_router(staff, plan)
    assert get(router, "acme.example.com") == "v3 v3 backend plan"
    assert get(router, "acme.example.com", X_Group="staff") == "v2 v2 backend staff"
    assert get(router, "globex.example.com", X_Group="staff") == "v2 v2 backend staff"
    assert get(router, "globex.example.com") == "v1 v1 default default"
    assert plan.calls == 2  # once per host: the decision without the request stays cached
    assert staff.calls == 4  # every request of those hosts
    assert staff.seen[1].headers["X-Group"] == "staff" and staff.seen[1].path == "/"


def test_a_backend_ranked_above_every_request_aware_one_is_never_overridden() -> None:
    staff = Group("staff", "v2")
    router = wsgi_router(staff)  # pin > tag > staff > rollout
    router.store.pin("acme", "v3")
    assert get(router, "acme.example.com", X_Group="staff") == "v3 v3 pin pin"
    assert staff.calls == 0  # not asked at all: nothing it says could win
    first = wsgi_router(Group("staff", "v2"), PIN, TAG, ROLLOUT)  # staff first
    first.store.pin("acme", "v3")
    assert get(first, "acme.example.com", X_Group="staff") == "v2 v2 backend staff"
    assert get(first, "acme.example.com") == "v3 v3 pin pin"


def test_tenant_traffic_is_untouched_without_a_request_aware_backend_above() -> None:
    router = wsgi_router(Listed("plan", {"acme": "v3"}))
    get(router, "acme.example.com")
    get(router, "globex.example.com")
    for entry in router._entries.values():
        decision, _, app = entry
        assert decision is not None and app is router._dispatch.target(decision.version)
    staffed = wsgi_router(Group("staff", "v2"))
    staffed.store.pin("acme", "v3")
    get(staffed, "acme.example.com")
    get(staffed, "www.example.com")  # no tenant: request-aware backends are per tenant
    for entry in staffed._entries.values():
        decision, _, app = entry
        assert decision is not None and app is staffed._dispatch.target(decision.version)


def test_explain_says_a_request_aware_backend_may_override_it() -> None:
    router = wsgi_router(Group("staff", "v2"), Group("beta-testers", "v3"))
    explained = router.explain("acme")
    assert explained.version == "v1" and explained.backend == "default"
    assert explained.detail == (
        "no rollout running; request-aware backends staff, beta-testers may override it per request"
    )
    router.store.pin("acme", "v3")
    assert "request-aware" not in router.explain("acme").detail
    controller = RolloutController(router.store, assign=router.chain)
    assert "staff, beta-testers may override" in controller.explain("globex").detail


@dataclass
class Broken:
    name: str = "broken"
    request_aware: bool = True
    ttl: float | None = None
    timeout: float | None = None
    version: str | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        if self.version is not None:
            return Assignment(self.version, "bad", "names what it names")
        raise RuntimeError("directory is down")


def test_a_failing_request_aware_backend_falls_back_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = wsgi_router(Broken(), Group("staff", "v2"))
    with caplog.at_level(logging.WARNING, logger="cohortroute"):
        assert get(router, "acme.example.com") == "v1 v1 default default"
        assert get(router, "acme.example.com", X_Group="staff") == "v2 v2 backend staff"
    assert router.status()["assign_errors"] == {"broken": 2}
    assert sum("'broken' failed" in r.getMessage() for r in caplog.records) == 1


def test_a_request_aware_answer_naming_an_unmounted_version_is_ignored_and_counted() -> None:
    router = wsgi_router(Broken("typo", version="v9"), Group("staff", "v2"))
    assert get(router, "acme.example.com") == "v1 v1 default default"
    assert get(router, "acme.example.com", X_Group="staff") == "v2 v2 backend staff"
    assert router.status()["assign_errors"] == {"typo": 2}


@dataclass
class Stuck:
    """Blocks until ``release`` is set; says ``entered`` when called (for ``block`` only)."""

    name: str = "slow"
    timeout: float | None = 5.0
    request_aware: bool = False
    ttl: float | None = None
    block: str = "acme"
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def assign(self, query: Query, /) -> Assignment | None:
        if query.tenant != self.block:
            return None
        self.entered.set()
        self.release.wait(30)
        return Assignment("v2", "slow", "took its time")


def test_a_request_aware_backend_past_its_timeout_falls_back() -> None:
    stuck = Stuck(name="directory", timeout=0.05, request_aware=True)
    router = wsgi_router(stuck)
    try:
        assert get(router, "acme.example.com") == "v1 v1 default default"
        assert router.status()["assign_errors"] == {"directory": 1}
    finally:
        stuck.release.set()


def test_a_signed_override_still_ranks_first_and_a_gated_rollout_keeps_data_first() -> None:
    key = "k1-secret-0123456789abcdef"
    clock = ManualClock(wall=NOW)
    router = wsgi_router(Group("staff", "v2"), override_keys={"k1": key}, clock=clock)
    token = mint("k1", key, "acme", "v3", NOW + 100)
    assert get(router, "acme.example.com", X_Group="staff") == "v2 v2 backend staff"
    got = get(router, "acme.example.com", X_Group="staff", X_Cohortroute_Override=token)
    assert got == "v3 v3 override override"
    RolloutController(router.store, clock=clock).start("v3", percent=0)

    def gate(policy: Policy) -> Policy:
        assert policy.rollout is not None
        return replace(policy, rollout=replace(policy.rollout, gated=True))

    router.store.update_policy("test-gate", gate)
    assert get(router, "acme.example.com", X_Group="staff").startswith("v1 ")  # data on v1
    assert "request-aware" not in router.explain("acme").detail


def test_request_aware_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="request_aware"):
        wsgi_router(Group("staff", "v2", request_aware="yes"))  # type: ignore[arg-type]


# --- precedence stays total ----------------------------------------------------------------------

VERSIONS = ["v1", "v2", "v3"]


@st.composite
def chains(draw: st.DrawFn) -> list[AssignmentBackend]:
    aware = [
        Group(f"g{i}", draw(st.sampled_from(VERSIONS))) for i in range(draw(st.integers(0, 3)))
    ]
    plain = [
        Listed(f"l{i}", {"acme": draw(st.sampled_from(VERSIONS))} if draw(st.booleans()) else {})
        for i in range(draw(st.integers(0, 2)))
    ]
    mine: list[AssignmentBackend] = [*aware, *plain]
    if draw(st.booleans()):
        mine += [PIN, TAG, ROLLOUT]
    return draw(st.permutations(mine))


@settings(max_examples=60, deadline=None)
@given(
    backends=chains(),
    pin=st.none() | st.sampled_from(VERSIONS),
    tagged=st.booleans(),
    rollout=st.booleans(),
    groups=st.lists(st.sampled_from(["g0", "g1", "g2"]), max_size=3),
)
def test_precedence_is_total_with_request_aware_backends_anywhere(
    backends: list[AssignmentBackend],
    pin: str | None,
    tagged: bool,
    rollout: bool,
    groups: list[str],
) -> None:
    router = wsgi_router(*backends)
    order = [b.name for b in router.chain.backends]
    if pin is not None:
        router.store.pin("acme", pin)
    if tagged:
        router.store.tag("acme", "beta")
        router.store.set_rule("beta", "v2")
    if rollout:
        RolloutController(router.store).start("v3", percent=100)
    opinions: dict[str, str | None] = {
        "pin": pin,
        "tag": "v2" if tagged else None,
        "rollout": "v3" if rollout else None,
    }
    for b in backends:
        if isinstance(b, Group):
            opinions[b.name] = b.version if b.name in groups else None
        elif isinstance(b, Listed):
            opinions[b.name] = b.answers.get("acme")
    first = next((n for n in order if opinions.get(n) is not None), "default")
    version = opinions[first] if first != "default" else "v1"
    for _ in range(2):  # a miss, then the cached entry
        served = get(router, "acme.example.com", X_Group=",".join(groups))
        app, got_version, _, got_backend = served.split()
        assert (app, got_version, got_backend) == (version, version, first)
    router.close()


# --- ASGI ----------------------------------------------------------------------------------------


def test_a_request_aware_backend_decides_per_request_under_asgi() -> None:
    staff = Group("staff", "v2")
    router = asgi_router(staff, Listed("plan", {"acme": "v3"}))

    async def run() -> None:
        assert await aget(router, "acme.example.com") == "v3 v3 backend plan"
        assert await aget(router, "acme.example.com", {"X-Group": "staff"}) == (
            "v2 v2 backend staff"
        )
        assert await aget(router, "globex.example.com") == "v1 v1 default default"

    asyncio.run(run())
    assert staff.calls == 3
    assert staff.seen[1].client == "10.0.0.7" and staff.seen[1].method == "GET"


def test_a_signed_override_ranks_above_a_request_aware_backend_under_asgi() -> None:
    key = "k1-secret-0123456789abcdef"
    router = asgi_router(Group("staff", "v2"), override_keys={"k1": key})
    token = mint("k1", key, "acme", "v3", NOW + 100)

    async def run() -> None:
        staff = {"X-Group": "staff"}
        assert await aget(router, "acme.example.com", staff) == "v2 v2 backend staff"
        with_token = {**staff, "X-Cohortroute-Override": token}
        assert await aget(router, "acme.example.com", with_token) == "v3 v3 override override"
        assert await aget(router, "acme.example.com") == "v1 v1 default default"

    asyncio.run(run())


def test_a_slow_request_aware_backend_under_asgi_falls_back_past_its_timeout() -> None:
    stuck = Stuck(name="directory", timeout=0.05, request_aware=True)
    router = asgi_router(stuck)
    try:
        assert asyncio.run(aget(router, "acme.example.com")) == "v1 v1 default default"
        assert router.status()["assign_errors"] == {"directory": 1}
    finally:
        stuck.release.set()


async def call(router: Any, host: str) -> str:
    """One request through an ASGI ``router`` on the running event loop (asyncio or trio)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await router(scope_for(host), receive, send)
    assert sent[0]["status"] == 200
    return str(sent[1]["body"].decode())


@pytest.mark.parametrize("event_loop", ["asyncio", "trio"])
def test_an_asgi_miss_waiting_on_a_backend_does_not_block_the_event_loop(event_loop: str) -> None:
    stuck = Stuck()  # timeout 5 s: past it a blocked loop would let acme finish first
    router = asgi_router(stuck)
    served: dict[str, str] = {}

    async def acme() -> None:
        served["acme"] = await call(router, "acme.example.com")

    async def run() -> None:
        assert await call(router, "globex.example.com") == "v1 v1 default default"  # warm
        async with anyio.create_task_group() as group:
            group.start_soon(acme)
            assert await anyio.to_thread.run_sync(stuck.entered.wait, 5)  # acme's miss waits
            assert await call(router, "globex.example.com") == "v1 v1 default default"
            assert await call(router, "initech.example.com") == "v1 v1 default default"  # miss
            assert await call(router, "example.com") == "v1 v1 no-tenant "
            assert "acme" not in served  # still waiting on the backend, off the loop
            stuck.release.set()
        assert served["acme"] == "v2 v2 backend slow"

    try:
        anyio.run(run, backend=event_loop)
    finally:
        stuck.release.set()
    assert router.status()["assign_errors"] == {}


# --- the backend checker ----------------------------------------------------------------------


def test_the_checker_asks_a_request_aware_backend_with_requests() -> None:
    check_assignment_backend(
        Group("staff", "v2"),
        tenants=["acme"],
        versions=["v1", "v2"],
        requests=[RequestView(), RequestView(headers={"X-Group": "staff"})],
    )


@dataclass
class Fickle:
    name: str = "fickle"
    request_aware: bool = True
    ttl: float | None = None
    timeout: float | None = None
    calls: int = 0

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        return Assignment("v2" if self.calls % 2 else "v1")


def test_the_checker_rejects_a_request_aware_backend_that_is_not_deterministic() -> None:
    with pytest.raises(AssertionError, match="same request the same answer"):
        check_assignment_backend(Fickle(), tenants=["acme"], versions=["v1", "v2"])


def test_the_checker_rejects_a_request_aware_backend_naming_other_versions() -> None:
    with pytest.raises(AssertionError, match="named 'v9'"):
        check_assignment_backend(
            Broken("typo", version="v9"), tenants=["acme"], versions=["v1", "v2"]
        )

"""Signed QA overrides and anonymous-visitor sampling under the ASGI router, in process.

The same behaviour as tests/test_assign_tokens.py and tests/test_assign_visitors.py show under
WSGI, plus what only ASGI has: byte headers (several ``Cookie`` headers, as HTTP/2 sends),
websockets, per-version lifespan state (for request-aware backends too, which move requests
the same way), and a router without these options keeping its warm path as it was.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from cohortroute import Assignment, CohortRouter, ConfigurationError, Query, RolloutController
from cohortroute._clock import ManualClock
from cohortroute.assign.asgi import SignedOverrideASGI, VisitorSamplingASGI
from cohortroute.assign.tokens import mint
from cohortroute.assign.visitors import COOKIE, MAX_AGE
from cohortroute.changes import set_visitor_sample
from cohortroute.cli import run
from cohortroute.policy import Policy
from cohortroute.store import MemoryStore

from .apps import asgi_version, communicator, wsgi_version
from .test_asgi_lifespan import stateful

K1 = "k1-secret-0123456789abcdef"
K2 = "k2-secret-0123456789abcdef"
VISITOR_KEY = "visitor-secret-0123456789abcdef"
NOW = 1_790_000_000.0

Headers = Sequence[tuple[str, str]]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> list[str]:
        """Every value of response header ``name`` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


def scope(host: str, headers: Headers = (), kind: str = "http") -> dict[str, Any]:
    """A request scope for ``host`` with extra ``headers`` (several of a name allowed)."""
    pairs = [(b"host", host.encode("latin-1"))]
    pairs += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "ws" if kind == "websocket" else "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": pairs,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
    }


async def exchange(router: Any, request: dict[str, Any]) -> Answer:
    comm = communicator(router, request)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(2)
    body = b""
    while True:
        message = await comm.receive_output(2)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(1)
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    return Answer(start["status"], pairs, body.decode())


def call(router: Any, host: str, headers: Headers = ()) -> Answer:
    """One HTTP request through ``router`` in process."""
    return asyncio.run(exchange(router, scope(host, headers)))


def websocket(router: Any, host: str, headers: Headers = ()) -> list[dict[str, Any]]:
    """Open a websocket through ``router``; every message the app sent, up to its close."""

    async def talk() -> list[dict[str, Any]]:
        comm = communicator(router, scope(host, headers, kind="websocket"))
        await comm.send_input({"type": "websocket.connect"})
        out = [await comm.receive_output(2)]
        while out[-1]["type"] != "websocket.close":
            out.append(await comm.receive_output(2))
        await comm.wait(1)
        return out

    return asyncio.run(talk())


# --- signed QA overrides ---------------------------------------------------------------------


def tokens_router(
    keys: dict[str, str | bytes] | None, clock: ManualClock, v2: Any = None
) -> CohortRouter:
    return CohortRouter(
        {"v1": asgi_version("v1"), "v2": v2 if v2 is not None else asgi_version("v2")},
        domains=["example.com"],
        override_keys=keys,
        clock=clock,
        register_tenants=False,
    )


def get(router: CohortRouter, tenant: str, token: str | None = None, cookie: bool = False) -> str:
    headers: list[tuple[str, str]] = []
    if token is not None and cookie:
        headers.append(("Cookie", f"other=1; cohortroute_override={token}"))
    elif token is not None:
        headers.append(("X-Cohortroute-Override", token))
    answer = call(router, f"{tenant}.example.com", headers)
    assert answer.status == 200
    return answer.body


def test_off_by_default_a_token_changes_nothing() -> None:
    router = tokens_router(None, ManualClock(wall=NOW))
    assert get(router, "acme", mint("k1", K1, "acme", "v2", NOW + 10_000)) == "v1 acme default |/"
    assert router.status()["override_tokens"] == {}


def test_a_valid_token_in_a_header_or_cookie_serves_its_version_with_reason_override() -> None:
    router = tokens_router({"k1": K1, "k2": K2}, ManualClock(wall=NOW))
    token = mint("k1", K1, "acme", "v2", NOW + 100)
    assert get(router, "acme", token) == "v2 acme override |/"
    assert get(router, "acme", token, cookie=True) == "v2 acme override |/"
    assert get(router, "acme", mint("k2", K2, "acme", "v2", NOW + 100)) == "v2 acme override |/"
    assert get(router, "acme") == "v1 acme default |/"  # the cached entry is not changed
    assert router.status()["override_tokens"] == {"accepted": 3}


def test_a_token_can_name_a_wsgi_version_mounted_in_the_asgi_router() -> None:
    router = tokens_router({"k1": K1}, ManualClock(wall=NOW), v2=wsgi_version("v2"))
    assert get(router, "acme", mint("k1", K1, "acme", "v2", NOW + 100)) == "v2 acme override |/"


@pytest.mark.parametrize(
    ("token", "counted"),
    [
        (mint("k1", K1, "acme", "v2", NOW - 1), "expired"),
        (mint("k1", K1, "globex", "v2", NOW + 10_000), "foreign"),
        (mint("k9", K1, "acme", "v2", NOW + 10_000), "foreign"),
        (mint("k1", "another-secret-0123456789", "acme", "v2", NOW + 10_000), "bad"),
        (mint("k1", K1, "acme", "v7", NOW + 10_000), "unmounted"),
        ("garbage", "bad"),
        ("a.b", "bad"),
        (mint("k1", K1, "acme", "v2", NOW + 10_000)[:-2] + "xx", "bad"),
        ("x" * 5000, "bad"),
    ],
)
def test_bad_expired_or_foreign_tokens_are_ignored_and_counted(token: str, counted: str) -> None:
    router = tokens_router({"k1": K1}, ManualClock(wall=NOW))
    assert get(router, "acme", token) == "v1 acme default |/"
    assert router.status()["override_tokens"] == {counted: 1}


def test_a_token_expires_on_the_routers_clock() -> None:
    clock = ManualClock(wall=NOW)
    router = tokens_router({"k1": K1}, clock)
    token = mint("k1", K1, "acme", "v2", NOW + 60)
    assert get(router, "acme", token).startswith("v2 ")
    clock.advance(61)
    assert get(router, "acme", token).startswith("v1 ")


def test_in_a_gated_rollout_a_token_never_moves_a_tenant_off_its_data() -> None:
    clock = ManualClock(wall=NOW)
    router = tokens_router({"k1": K1}, clock)
    RolloutController(router.store, clock=clock).start("v2", percent=0)
    token = mint("k1", K1, "acme", "v2", NOW + 10_000)
    assert get(router, "acme", token).startswith("v2 ")  # not gated: the token works

    def gate(policy: Policy) -> Policy:
        assert policy.rollout is not None
        return replace(policy, rollout=replace(policy.rollout, gated=True))

    router.store.update_policy("test-gate", gate)
    assert get(router, "acme", token) == "v1 acme default |/"  # its data is on v1


@pytest.mark.parametrize(
    ("keys", "message"),
    [({}, "at least one key id"), ({"k1": "short"}, "shorter than 16 bytes")],
)
def test_unusable_keys_are_refused(keys: dict[str, str | bytes], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        tokens_router(keys, ManualClock())


def test_the_cli_mints_a_token_the_asgi_router_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", K2)
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["override", "mint", "acme", "v2", "--key-id", "k2", "--expires-in", "15m", "--json"],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    minted = json.loads(out.getvalue())
    router = tokens_router({"k1": K1, "k2": K2}, ManualClock(wall=minted["expires"] - 900))
    assert get(router, "acme", minted["token"]) == "v2 acme override |/"


def test_the_cookie_may_come_in_any_of_several_cookie_headers() -> None:
    router = tokens_router({"k1": K1}, ManualClock(wall=NOW))
    token = mint("k1", K1, "acme", "v2", NOW + 100)
    headers = [("Cookie", "a=1"), ("Cookie", f"cohortroute_override={token}"), ("Cookie", "b=2")]
    assert call(router, "acme.example.com", headers).body == "v2 acme override |/"


def test_several_override_headers_are_one_bad_token_as_under_wsgi() -> None:
    router = tokens_router({"k1": K1}, ManualClock(wall=NOW))
    token = mint("k1", K1, "acme", "v2", NOW + 100)
    headers = [("X-Cohortroute-Override", token), ("X-Cohortroute-Override", token)]
    assert call(router, "acme.example.com", headers).body == "v1 acme default |/"
    assert router.status()["override_tokens"] == {"bad": 1}


def test_a_websocket_handshake_carries_the_token() -> None:
    router = tokens_router({"k1": K1}, ManualClock(wall=NOW))
    token = mint("k1", K1, "acme", "v2", NOW + 100)
    sent = websocket(router, "acme.example.com", [("Cookie", f"cohortroute_override={token}")])
    assert sent[1] == {"type": "websocket.send", "text": "v2 acme"}
    assert websocket(router, "acme.example.com")[1]["text"] == "v1 acme"
    assert router.status()["override_tokens"] == {"accepted": 1}


def test_an_overridden_request_sees_the_lifespan_state_of_the_version_it_is_served() -> None:
    router = CohortRouter(
        {"v1": stateful("v1"), "v2": stateful("v2")},
        domains=["example.com"],
        override_keys={"k1": K1},
        register_tenants=False,
    )
    token = mint("k1", K1, "acme", "v2", 4_000_000_000)
    with TestClient(router, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "v1 sees v1"
        assert client.get("/", headers={"X-Cohortroute-Override": token}).text == "v2 sees v2"
        assert client.get("/", headers={"X-Cohortroute-Override": "bad"}).text == "v1 sees v1"


# --- anonymous visitors ----------------------------------------------------------------------


def visitors_router(store: MemoryStore | None = None, v2: Any = None) -> CohortRouter:
    return CohortRouter(
        {"v1": asgi_version("v1"), "v2": v2 if v2 is not None else asgi_version("v2")},
        domains=["example.com"],
        store=store or MemoryStore(),
        visitor_key=VISITOR_KEY,
        clock=ManualClock(),
        register_tenants=False,
    )


def visit(router: CohortRouter, host: str, cookie: str | None = None) -> Answer:
    headers = [] if cookie is None else [("Cookie", f"{COOKIE}={cookie}")]
    answer = call(router, host, headers)
    assert answer.status == 200
    return answer


def set_cookie_value(answer: Answer) -> str:
    (cookie,) = answer.header("Set-Cookie")
    return cookie.split(";", 1)[0].split("=", 1)[1]


def test_without_a_sample_nothing_changes_and_tenants_never_pay() -> None:
    router = visitors_router()
    answer = visit(router, "example.com")
    assert answer.body == "v1 None no-tenant |/"
    assert answer.header("Set-Cookie") == [] and answer.header("Vary") == []
    router.store.write(set_visitor_sample("v2", 50))
    answer = visit(router, "acme.example.com")
    assert answer.body == "v1 acme default |/"
    assert answer.header("Set-Cookie") == [] and answer.header("Vary") == []
    entry = router._entries[b"acme.example.com"][2]
    assert entry is router._dispatch.target("v1")  # the tenant's entry is not wrapped


def test_a_sampled_visitor_gets_a_secure_signed_cookie_and_keeps_its_version() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 100))
    answer = visit(router, "www.example.com")
    assert answer.body == "v2 None backend |/"
    assert answer.header("Vary") == ["Cookie"]
    (cookie,) = answer.header("Set-Cookie")
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in (f"Max-Age={MAX_AGE}", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie
    value = set_cookie_value(answer)
    router.store.write(set_visitor_sample("v2", 50))  # same version: the salt is kept
    seen = {visit(router, "example.com", value).body for _ in range(5)}
    assert len(seen) == 1
    answer = visit(router, "example.com", value)
    assert answer.header("Set-Cookie") == [] and answer.header("Vary") == ["Cookie"]


def test_the_app_headers_are_kept_and_a_wsgi_version_can_be_sampled_into() -> None:
    router = visitors_router(v2=wsgi_version("v2"))
    router.store.write(set_visitor_sample("v2", 100))
    answer = visit(router, "example.com")
    assert answer.body == "v2 None backend |/"
    assert answer.header("Content-Type") == ["text/plain"]
    assert answer.header("Vary") == ["Cookie"] and len(answer.header("Set-Cookie")) == 1


def test_the_visitor_cookie_may_come_in_any_of_several_cookie_headers() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 100))
    value = set_cookie_value(visit(router, "example.com"))
    headers = [("Cookie", "a=1"), ("Cookie", f"{COOKIE}={value}")]
    answer = call(router, "example.com", headers)
    assert answer.body == "v2 None backend |/" and answer.header("Set-Cookie") == []


def test_a_forged_or_damaged_cookie_is_replaced() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 50))
    for forged in ("0" * 24 + "." + "0" * 32, "garbage", ""):
        assert len(visit(router, "example.com", forged).header("Set-Cookie")) == 1


def test_the_share_over_2000_fresh_visitors_is_within_3_points() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 30))

    async def visits() -> int:
        sampled = 0
        for _ in range(2000):
            answer = await exchange(router, scope("example.com"))
            sampled += answer.body.startswith("v2 ")
        return sampled

    assert abs(asyncio.run(visits()) / 2000 - 0.30) <= 0.03


def test_a_visitor_on_a_tenant_host_follows_the_tenant() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 100))
    value = set_cookie_value(visit(router, "example.com"))
    answer = visit(router, "acme.example.com", value)
    assert answer.body == "v1 acme default |/" and answer.header("Vary") == []


def test_status_shows_the_sample() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 5, salt="s1"))
    visit(router, "example.com")  # status() reflects the last contact with the store
    assert router.status()["visitors"] == {"version": "v2", "percent": 500, "salt": "s1"}


def test_a_websocket_visitor_keeps_its_version_and_a_new_one_gets_its_cookie_on_accept() -> None:
    router = visitors_router()
    router.store.write(set_visitor_sample("v2", 100))
    accept, sent, _ = websocket(router, "example.com")
    assert sent["text"] == "v2 None"
    ((name, cookie),) = accept["headers"]  # no Vary on a 101: nothing caches it
    assert name == b"set-cookie" and cookie.startswith(f"{COOKIE}=".encode())
    value = cookie.decode().split(";", 1)[0].split("=", 1)[1]
    router.store.write(set_visitor_sample("v2", 0))  # the same salt: nobody is sampled now
    accept, sent, _ = websocket(router, "example.com", [("Cookie", f"{COOKIE}={value}")])
    assert sent["text"] == "v1 None" and "headers" not in accept


def test_a_sampled_visitor_sees_the_lifespan_state_of_its_version() -> None:
    router = CohortRouter(
        {"v1": stateful("v1"), "v2": stateful("v2")},
        domains=["example.com"],
        visitor_key=VISITOR_KEY,
        register_tenants=False,
    )
    router.store.write(set_visitor_sample("v2", 100))
    with TestClient(router, base_url="https://example.com") as client:
        first = client.get("/")
        assert first.text == "v2 sees v2" and first.headers["vary"] == "Cookie"
        assert client.get("https://acme.example.com/").text == "v1 sees v1"


@dataclass(frozen=True)
class Staff:
    """A request-aware backend: ``X-Staff: 1`` gets v2."""

    name: str = "staff"
    request_aware: bool = True
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        if query.request is not None and query.request.headers.get("X-Staff") == "1":
            return Assignment("v2", "staff")
        return None


def test_a_request_a_request_aware_backend_moves_sees_the_state_of_its_version() -> None:
    # The same state picking serves request-aware backends (cohortroute.assign.request).
    router = CohortRouter(
        {"v1": stateful("v1"), "v2": stateful("v2")},
        domains=["example.com"],
        assign=[Staff()],
        register_tenants=False,
    )
    with TestClient(router, base_url="http://acme.example.com") as client:
        assert client.get("/").text == "v1 sees v1"
        assert client.get("/", headers={"X-Staff": "1"}).text == "v2 sees v2"


# --- what it costs ---------------------------------------------------------------------------


def test_only_the_entries_these_options_concern_are_wrapped() -> None:
    plain = CohortRouter(
        {"v1": asgi_version("v1"), "v2": asgi_version("v2")},
        domains=["example.com"],
        register_tenants=False,
    )
    call(plain, "acme.example.com")
    call(plain, "example.com")
    for host in (b"acme.example.com", b"example.com"):  # the warm path is untouched
        assert plain._entries[host][2] is plain._dispatch.target("v1")
    assert plain._dispatch.target("v1") is plain.apps["v1"]

    signed = tokens_router({"k1": K1}, ManualClock(wall=NOW))
    call(signed, "acme.example.com")
    call(signed, "example.com")
    assert isinstance(signed._entries[b"acme.example.com"][2], SignedOverrideASGI)
    assert not isinstance(signed._entries[b"example.com"][2], SignedOverrideASGI)

    sampling = visitors_router()
    call(sampling, "example.com")
    assert not isinstance(sampling._entries[b"example.com"][2], VisitorSamplingASGI)
    sampling.store.write(set_visitor_sample("v2", 10))
    call(sampling, "example.com")
    assert isinstance(sampling._entries[b"example.com"][2], VisitorSamplingASGI)

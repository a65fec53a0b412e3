"""Anonymous visitors sampled into a version through a signed cookie; tenants pay nothing."""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, ConfigurationError, ValidationError
from cohortroute._clock import ManualClock
from cohortroute.assign.visitors import COOKIE, MAX_AGE
from cohortroute.changes import set_visitor_sample
from cohortroute.cli import run
from cohortroute.store import MemoryStore

from .apps import asgi_version, wsgi_version

KEY = "visitor-secret-0123456789abcdef"


def make(store: MemoryStore | None = None, key: str | None = KEY) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store or MemoryStore(),
        visitor_key=key,
        clock=ManualClock(),
        register_tenants=False,
    )


def visit(router: CohortRouter, host: str, cookie: str | None = None) -> tuple[str, dict[str, str]]:
    headers = {"Host": host}
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    response = Client(router, use_cookies=False).get("/", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True), dict(response.headers)


def set_cookie_value(headers: dict[str, str]) -> str:
    return headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]


def test_without_a_sample_nothing_changes_and_tenants_never_pay() -> None:
    router = make()
    body, headers = visit(router, "example.com")
    assert body == "v1 None no-tenant |/" and "Set-Cookie" not in headers and "Vary" not in headers
    router.store.write(set_visitor_sample("v2", 50))
    body, headers = visit(router, "acme.example.com")
    assert body == "v1 acme default |/" and "Set-Cookie" not in headers and "Vary" not in headers
    plain = router._dispatch.target("v1")
    assert router._entries["acme.example.com"][2] is plain  # the tenant's entry is not wrapped


def test_a_sampled_visitor_gets_a_secure_signed_cookie_and_keeps_its_version() -> None:
    router = make()
    router.store.write(set_visitor_sample("v2", 100))
    body, headers = visit(router, "www.example.com")
    assert body == "v2 None backend |/"
    assert headers["Vary"] == "Cookie"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in (f"Max-Age={MAX_AGE}", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie
    value = set_cookie_value(headers)
    router.store.write(set_visitor_sample("v2", 50))  # same version: the salt is kept
    seen = {visit(router, "example.com", value)[0] for _ in range(5)}
    assert len(seen) == 1
    body, headers = visit(router, "example.com", value)
    assert "Set-Cookie" not in headers and headers["Vary"] == "Cookie"


def test_a_forged_or_damaged_cookie_is_replaced() -> None:
    router = make()
    router.store.write(set_visitor_sample("v2", 50))
    for forged in ("0" * 24 + "." + "0" * 32, "garbage", ""):
        _, headers = visit(router, "example.com", forged)
        assert "Set-Cookie" in headers


def test_the_share_over_2000_fresh_visitors_is_within_3_points() -> None:
    router = make()
    router.store.write(set_visitor_sample("v2", 30))
    app = Client(router, use_cookies=False)
    sampled = sum(
        app.get("/", headers={"Host": "example.com"}).get_data(as_text=True).startswith("v2 ")
        for _ in range(2000)
    )
    assert abs(sampled / 2000 - 0.30) <= 0.03


def test_a_visitor_on_a_tenant_host_follows_the_tenant() -> None:
    router = make()
    router.store.write(set_visitor_sample("v2", 100))
    value = set_cookie_value(visit(router, "example.com")[1])
    body, headers = visit(router, "acme.example.com", value)
    assert body == "v1 acme default |/" and "Vary" not in headers


def test_the_cli_sets_shows_and_stops_the_sample_audited(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=url,
        register_tenants=False,
    ).close()

    def cli(*args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        assert run(["--store", url, *args], out=out, err=err) == 0, err.getvalue()
        return out.getvalue()

    assert "not sampled" in cli("visitors", "show")
    assert "5% sampled into v2" in cli("visitors", "set", "v2", "--percent", "5")
    assert "anonymous visitors: 5% sampled into v2" in cli("status")
    shown = json.loads(cli("visitors", "show", "--json"))
    assert shown["version"] == "v2" and shown["percent"] == 5.0 and shown["salt"]
    assert "not sampled" in cli("visitors", "off")
    assert "visitors" in cli("history")
    router = make(store=None)
    router.store.write(set_visitor_sample("v2", 5, salt="s1"))
    visit(router, "example.com")  # status() reflects the last contact with the store
    assert router.status()["visitors"] == {"version": "v2", "percent": 500, "salt": "s1"}


def test_unknown_versions_and_short_keys_are_refused_under_wsgi_and_asgi() -> None:
    router = make()
    with pytest.raises(ValidationError):
        router.store.write(set_visitor_sample("v2", "150"))
    with pytest.raises(ConfigurationError, match="shorter than 16 bytes"):
        make(key="short")
    with pytest.raises(ConfigurationError, match="shorter than 16 bytes"):
        CohortRouter({"v1": asgi_version("v1")}, domains=["example.com"], visitor_key="short")
    # ASGI routers sample visitors too (tests/test_assign_asgi.py): the key is accepted.
    asgi = CohortRouter({"v1": asgi_version("v1")}, domains=["example.com"], visitor_key=KEY)
    assert asgi.status()["visitors"] == {}

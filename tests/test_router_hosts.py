"""What the router does with hostile or unusual Hosts, under WSGI and ASGI: over-long, Unicode
look-alikes, leading-zero ports, bad ``xn--`` labels, rejected floods, and health-probe hosts."""

from __future__ import annotations

from typing import Any

import pytest

from cohortroute import CohortRouter, ConfigurationError, ValidationError
from cohortroute.router._dispatch import MAX_REJECTED
from cohortroute.tenancy import MAX_HOST_LENGTH

from .apps import asgi_version, wsgi_version
from .test_router_asgi import request as asgi_request


def make(flavour: str, **kwargs: Any) -> Any:
    version = asgi_version if flavour == "asgi" else wsgi_version
    apps = {"v1": version("v1"), "v2": version("v2")}
    options: dict[str, Any] = {"domains": ["example.com"], "register_tenants": False}
    return CohortRouter(apps, **{**options, **kwargs})


def ask(router: Any, host: str) -> tuple[int, str]:
    """One request for ``host``: the status code and the body."""
    if router.__class__.__name__.startswith("ASGI"):
        return asgi_request(router, host)
    status, body = call_wsgi(router, host)
    return int(status.split()[0]), body


def call_wsgi(router: Any, host: str) -> tuple[str, str]:
    """One request straight through the WSGI callable, the Host as a server passes it (a test
    client would refuse or re-encode some of them): the status line and the body."""
    seen: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        seen.append(status)

    environ = {"HTTP_HOST": host, "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/"}
    body = b"".join(router(environ, start_response))
    return seen[0], body.decode()


FLAVOURS = pytest.mark.parametrize("flavour", ["wsgi", "asgi"])


@FLAVOURS
@pytest.mark.parametrize("size", [MAX_HOST_LENGTH + 1, 8 * 1024, 64 * 1024])
def test_an_over_long_host_is_400_and_never_cached(flavour: str, size: int) -> None:
    router = make(flavour)
    for i in range(3):
        host = f"{i}" + "a" * (size - 13) + ".example.com"
        status, body = ask(router, host)
        assert status == 400 and "over 260 characters" in body
    assert router.status()["cached_hosts"] == 0


@FLAVOURS
def test_the_longest_valid_host_is_served(flavour: str) -> None:
    domain = ".".join(["b" * 63, "c" * 63, "d" * 61])
    router = make(flavour, domains=[domain])
    host = "a" * 63 + "." + domain + ".:65535"
    assert len(host) == MAX_HOST_LENGTH
    assert ask(router, host) == (200, "v1 " + "a" * 63 + " default |/")


def test_rejected_hosts_are_cached_only_up_to_a_small_bound() -> None:
    router = make("wsgi")
    for i in range(MAX_REJECTED + 500):
        assert call_wsgi(router, f"t{i}.evil.com")[0].startswith("400")
    cached = router.status()["cached_hosts"]
    assert cached == MAX_REJECTED
    assert call_wsgi(router, "acme.example.com")[0].startswith("200")  # tenants still cached
    assert router.status()["cached_hosts"] == cached + 1
    assert call_wsgi(router, "t0.evil.com")[0].startswith("400")  # a cached rejection
    assert call_wsgi(router, f"t{MAX_REJECTED + 499}.evil.com")[0].startswith("400")


def test_rejected_hosts_share_one_400_app_per_message() -> None:
    router = make("wsgi")
    for host in ("a.evil.com", "b.evil.com", "c.evil.com"):
        call_wsgi(router, host)
    apps = {id(entry[2]) for entry in router._entries.values()}
    assert len(apps) == 1


@FLAVOURS
@pytest.mark.parametrize(
    "host",
    [
        "\u212acme.example.com",  # KELVIN SIGN: would lower-case to 'kcme'
        "\u017fhop.example.com",  # LONG S: would case-fold to 'shop'
        "\uff41cme.example.com",  # FULLWIDTH a
        "acme.example.com:0080",
        "acme.example.com:08000",
        "xn--zz.example.com",  # does not decode
        "xn--ls8h.example.com",  # decodes to an emoji
        "xn--abc-.example.com",  # decodes to plain ASCII
    ],
)
def test_unicode_look_alikes_leading_zero_ports_and_bad_punycode_are_400(
    flavour: str, host: str
) -> None:
    router = make(flavour)
    router.store.pin("kcme", "v2")
    router.store.pin("shop", "v2")
    router.store.pin("acme", "v2")
    if flavour == "asgi":
        # An ASGI server passes the raw bytes; UTF-8 Unicode arrives as Latin-1 mojibake.
        host = host.encode().decode("latin-1")
    status, body = ask(router, host)
    assert status == 400, body


@FLAVOURS
def test_a_valid_punycode_label_is_its_own_tenant(flavour: str) -> None:
    router = make(flavour)
    router.store.pin("xn--bcher-kva", "v2")
    assert ask(router, "XN--BCHER-KVA.example.com:443") == (200, "v2 xn--bcher-kva pin |/")


def test_pins_refuse_names_that_would_fold_into_another_tenant() -> None:
    router = make("wsgi")
    for name in ("\u212acme", "\u017fhop", "xn--zz"):
        with pytest.raises(ValidationError, match="invalid tenant"):
            router.store.pin(name, "v2")
        with pytest.raises(ValidationError, match="invalid tenant"):
            router.explain(name)


@FLAVOURS
def test_extra_hosts_are_served_the_default_for_health_probes(flavour: str) -> None:
    router = make(flavour, extra_hosts=["localhost", "shop-svc"], default="v2")
    for host in ("localhost", "localhost:8000", "shop-svc:8000", "SHOP-SVC"):
        assert ask(router, host) == (200, "v2 None no-tenant |/"), host
    assert ask(router, "acme.example.com") == (200, "v2 acme default |/")
    for host in ("evil.com", "shop-svc.evil.com", "x.localhost", "shop-svc2:8000"):
        assert ask(router, host)[0] == 400, host


def test_extra_hosts_without_domains_or_with_a_custom_resolver_are_refused() -> None:
    def resolve(host: str) -> str | None:
        return None

    with pytest.raises(ConfigurationError, match="return None from it"):
        CohortRouter({"v1": wsgi_version("v1")}, tenant_resolver=resolve, extra_hosts=["localhost"])
    with pytest.raises(ConfigurationError, match="no scheme or port"):
        make("wsgi", extra_hosts=["localhost:8000"])


@pytest.mark.parametrize("answer", ["Bad Tenant", "\u212acme", "x" * 64, "xn--zz", ""])
def test_a_custom_resolvers_invalid_tenant_gets_400_never_a_record(
    answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    router = CohortRouter(
        {"v1": wsgi_version("v1")}, tenant_resolver=lambda host: answer, register_tenants=False
    )
    for _ in range(2):
        status, body = ask(router, "a.corp.test")
        assert status == 400 and "invalid tenant name" in body
    assert [t.name for t in router.store.tenants()] == []
    assert len([r for r in caplog.records if "tenant_resolver answered" in r.getMessage()]) == 1


def test_a_custom_resolvers_upper_case_tenant_is_lowered() -> None:
    router = CohortRouter({"v1": wsgi_version("v1")}, tenant_resolver=lambda host: "ACME")
    router.store.pin("acme", "v1")
    assert ask(router, "a.corp.test") == (200, "v1 acme pin |/")


@pytest.mark.parametrize("flavour", ["wsgi", "asgi"])
def test_an_ip_address_host_warns_once_about_a_proxy_that_drops_the_host(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    # nginx `proxy_pass http://127.0.0.1:8000` without `proxy_set_header Host $host` sends the
    # upstream's address as Host: every customer silently gets the default. Say so, once.
    router = make(flavour)
    with caplog.at_level("WARNING", logger="cohortroute"):
        for host in ["acme.example.com", "127.0.0.1:8000", "127.0.0.1:8000", "[::1]:8000"]:
            assert ask(router, host)[0] == 200
    warnings = [r.getMessage() for r in caplog.records if "Host header" in r.getMessage()]
    assert len(warnings) == 1
    assert "'127.0.0.1:8000'" in warnings[0]
    assert "proxy_set_header Host $host" in warnings[0]
    assert "ProxyPreserveHost On" in warnings[0]


def test_tenant_and_name_hosts_never_warn_about_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    router = make("wsgi", extra_hosts=["localhost"])
    with caplog.at_level("WARNING", logger="cohortroute"):
        for host in ["acme.example.com", "example.com", "www.example.com", "localhost:8000"]:
            assert ask(router, host)[0] == 200
    assert not [r for r in caplog.records if "Host header" in r.getMessage()]

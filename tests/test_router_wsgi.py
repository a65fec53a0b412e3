"""CohortRouter under WSGI, in process with werkzeug's test client."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import pytest
from werkzeug.test import Client

from cohortroute import (
    ASGICohortRouter,
    CohortRouteError,
    CohortRouter,
    ConfigurationError,
    Reason,
    UnknownVersionError,
    WSGICohortRouter,
)
from cohortroute._clock import ManualClock
from cohortroute.rollout import RolloutController
from cohortroute.router import REGISTER_DELAY
from cohortroute.store import MemoryStore

from .apps import asgi_version, wsgi_version


def make(**kwargs: object) -> CohortRouter:
    options: dict[str, object] = {"domains": ["example.com"]}
    options.update(kwargs)
    return CohortRouter({"v1": wsgi_version("v1"), "v2": wsgi_version("v2")}, **options)  # type: ignore[arg-type]


def get(router: CohortRouter, host: str, path: str = "/") -> tuple[int, str]:
    response = Client(router).get(path, headers={"Host": host})
    return response.status_code, response.get_data(as_text=True)


def test_all_wsgi_versions_make_a_wsgi_router() -> None:
    assert isinstance(make(), WSGICohortRouter)


def test_tenant_gets_default_then_pin() -> None:
    router = make()
    assert get(router, "acme.example.com") == (200, "v1 acme default |/")
    router.store.pin("acme", "v2")
    assert get(router, "acme.example.com") == (200, "v2 acme pin |/")  # visible at once
    assert get(router, "globex.example.com") == (200, "v1 globex default |/")


def test_no_tenant_hosts_get_the_default() -> None:
    router = make(default="v2")
    for host in ["example.com", "www.example.com", "a.b.example.com", "127.0.0.1:8000"]:
        assert get(router, host) == (200, "v2 None no-tenant |/")


@pytest.mark.parametrize(
    "host", ["evil.com", "acme.example.com:99999", "ac me.example.com", "bücher.example.com"]
)
def test_bad_hosts_get_a_plain_400(host: str) -> None:
    response = Client(make()).get("/", headers={"Host": host})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("400 Bad Request: ")


def test_missing_host_on_http11_is_400_but_http10_uses_server_name() -> None:
    router = make()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    statuses: list[str] = []
    router(dict(environ, SERVER_PROTOCOL="HTTP/1.1"), lambda s, h, e=None: statuses.append(s))
    body = router(
        dict(environ, SERVER_PROTOCOL="HTTP/1.0"), lambda s, h, e=None: statuses.append(s)
    )
    assert statuses == ["400 Bad Request", "200 OK"]
    assert b"".join(body).startswith(b"v1 None no-tenant")


def test_unknown_hosts_can_be_served_the_default() -> None:
    assert get(make(allow_unknown_hosts=True), "shop.other.org")[0] == 200


def test_script_name_and_path_are_untouched() -> None:
    router = make()
    response = Client(router).get("/orders/1", base_url="http://acme.example.com/app")
    assert response.get_data(as_text=True).endswith("/app|/orders/1")


def test_rollout_and_tag_rules() -> None:
    router = make()
    router.store.set_rule("beta", "v2")
    router.store.tag("globex", "beta")
    assert get(router, "globex.example.com")[1].startswith("v2 globex tag")
    router.store.start_rollout("v2", 100)
    assert get(router, "acme.example.com")[1].startswith("v2 acme rollout")
    router.store.set_percent(0)
    assert get(router, "acme.example.com")[1].startswith("v1 acme default")


def test_explain_matches_what_requests_get() -> None:
    router = make()
    router.store.start_rollout("v2", 50)
    for i in range(50):
        tenant = f"t{i}"
        decision = router.explain(tenant)
        assert get(router, f"{tenant}.example.com")[1].startswith(
            f"{decision.version} {tenant} {decision.reason}"
        )


def test_unmounted_version_in_the_store_is_served_the_default_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2", "v0-retired"], "v1")
    store.pin("acme", "v0-retired")
    store.pin("globex", "v0-retired")
    router = make(store=store)
    with caplog.at_level(logging.WARNING, logger="cohortroute"):
        assert get(router, "acme.example.com") == (200, "v1 acme unmounted |/")
        assert get(router, "globex.example.com") == (200, "v1 globex unmounted |/")
    assert len([r for r in caplog.records if "v0-retired" in r.getMessage()]) == 1
    assert router.explain("acme").detail == (
        "pinned to v0-retired, but v0-retired is not mounted here; the default v1 is served instead"
    )


def test_the_router_records_its_versions_and_default_in_the_store() -> None:
    router = make(default="v2")
    policy = router.store.policy()
    assert policy.versions == {"v1", "v2"} and policy.default == "v2"
    entry = router.store.history()[-1]
    assert entry.actor == "cohortroute-router"


def test_store_default_wins_over_the_configured_one_once_set() -> None:
    store = MemoryStore()
    make(store=store, default="v1")
    store.set_default("v2")  # e.g. after a finalize
    assert get(make(store=store, default="v1"), "acme.example.com")[1].startswith("v2 acme default")


def test_two_routers_share_nothing() -> None:
    a, b = make(), make()
    a.store.pin("acme", "v2")
    assert get(a, "acme.example.com")[1].startswith("v2")
    assert get(b, "acme.example.com")[1].startswith("v1")


def test_decision_cache_is_bounded() -> None:
    router = make(cache_size=50)
    client = Client(router)
    for i in range(1000):
        client.get("/", headers={"Host": f"t{i}.example.com"})
    assert router.status()["cached_hosts"] <= 50


def test_cache_drops_when_another_process_changes_the_store() -> None:
    # Two store objects over one state stand in for two processes: no notification crosses.
    store = MemoryStore()
    router = make(store=store, refresh_interval=0)
    assert get(router, "acme.example.com")[1].startswith("v1")
    store._listeners.clear()  # the "other process" cannot notify this router
    store.pin("acme", "v2")
    assert get(router, "acme.example.com")[1].startswith("v2")  # seen through the revision check


@pytest.mark.parametrize(
    ("apps", "kwargs", "message"),
    [
        ({}, {"domains": ["example.com"]}, "non-empty mapping"),
        (
            {"v1": wsgi_version("v1")},
            {"domains": ["example.com"], "default": "v9"},
            "not one of the mounted",
        ),
        ({"v1": wsgi_version("v1")}, {}, "give domains="),
        ({"v1": wsgi_version("v1")}, {"domains": "example.com"}, "list of names"),
        (
            {"v1": wsgi_version("v1")},
            {"domains": ["example.com"], "store": "nosuch://x"},
            "unknown store scheme",
        ),
        (
            {"v1": wsgi_version("v1")},
            {"domains": ["example.com"], "store": "state.db"},
            "store must be a URL",
        ),
        ({"bad name!": wsgi_version("v1")}, {"domains": ["example.com"]}, "invalid version name"),
        ({"v1": "not callable"}, {"domains": ["example.com"]}, "not a WSGI or ASGI callable"),
        ({"v1": asgi_version("v1")}, {"domains": ["example.com"], "interface": "wsgi"}, "ASGI"),
        ({"v1": wsgi_version("v1")}, {"domains": ["example.com"], "interface": "cgi"}, "interface"),
    ],
)
def test_configuration_mistakes_raise_at_construction(
    apps: dict[str, object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(CohortRouteError, match=message) as info:
        CohortRouter(apps, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, (ConfigurationError, CohortRouteError))


def test_first_version_is_the_default_when_none_given() -> None:
    assert make().default == "v1"


def test_custom_tenant_resolver() -> None:
    def resolve(host: str) -> str | None:
        return host.split(".")[0] if host.endswith(".corp.test") else None

    router = CohortRouter({"v1": wsgi_version("v1")}, tenant_resolver=resolve)
    assert get(router, "ACME.corp.test")[1].startswith("v1 acme")
    assert get(router, "other.org")[1].startswith("v1 None no-tenant")
    assert get(router, "bad host")[0] == 400  # validation happens before the resolver


def test_explain_for_unknown_override_version_is_refused() -> None:
    with pytest.raises(UnknownVersionError, match="v1, v2"):
        make()._overrides.force("v9")


def test_reason_is_a_str_enum_with_the_documented_values() -> None:
    assert [r.value for r in Reason] == [
        "override",
        "pin",
        "tag",
        "rollout",
        "default",
        "no-tenant",
        "unmounted",
        "backend",
    ]


def test_unmounted_versions_count_as_store_errors() -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2", "v9"], "v1")
    store.pin("acme", "v9")
    router = make(store=store)
    before = router.status()["store_errors"]
    assert get(router, "acme.example.com")[1].startswith("v1 acme unmounted")
    assert router.status()["store_errors"] == before + 1


def test_close_stops_the_router_cleanly_and_it_still_works_after() -> None:
    router = make()
    router.store.pin("acme", "v2")
    router.close()
    assert get(router, "acme.example.com")[1].startswith("v2 acme pin")


def test_a_change_behind_the_routers_back_is_seen_at_the_refresh_interval() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = make(store=store, refresh_interval=30, clock=clock)
    assert get(router, "acme.example.com")[1].startswith("v1")
    store._listeners.clear()  # another process: no notification reaches this router
    store.pin("acme", "v2")
    clock.advance(29.9)
    assert get(router, "acme.example.com")[1].startswith("v1")  # warm: the store is not asked
    clock.advance(0.1)
    assert get(router, "acme.example.com")[1].startswith("v2")


def test_a_router_follows_a_timed_plan_step_on_its_clock_without_any_write() -> None:
    clock = ManualClock(wall=time.time())
    store = MemoryStore()
    router = make(store=store, refresh_interval=3600, register_tenants=False, clock=clock)
    RolloutController(store, settle=0, drain=0).start("v2", plan=[0, 100], every=60, auto=True)
    assert get(router, "acme.example.com")[1].startswith("v1")
    revision = store.revision()
    clock.advance(59)
    assert get(router, "acme.example.com")[1].startswith("v1")
    clock.advance(2)
    assert get(router, "acme.example.com")[1].startswith("v2 acme rollout")
    assert store.revision() == revision  # no write moved it: the step boundary did


@pytest.mark.parametrize("cls", [CohortRouter, WSGICohortRouter, ASGICohortRouter])
def test_a_misspelt_option_is_a_type_error_naming_it(cls: type[CohortRouter]) -> None:
    apps = {"v1": asgi_version("v1") if cls is ASGICohortRouter else wsgi_version("v1")}
    with pytest.raises(TypeError, match="domainz"):
        cls(apps, domainz=["example.com"])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="positional"):
        cls(apps, None, ["example.com"])  # type: ignore[call-arg]


def test_an_option_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cache_size must be an integer"):
        make(cache_size="big")


MYPY_SNIPPET = """
from cohortroute import ASGICohortRouter, CohortRouter, WSGICohortRouter

def app(environ: object, start_response: object) -> list[bytes]:
    return []

CohortRouter({"v1": app}, domains=["example.com"], cache_size=10)
WSGICohortRouter({"v1": app}, domainz=["example.com"], cache_size="big")
ASGICohortRouter({"v1": app}, domains=["example.com"], interface="cgi")
"""


def test_type_checkers_see_every_router_option() -> None:
    api = pytest.importorskip("mypy.api")
    isolated = ["--config-file", os.devnull, "--no-incremental", "--cache-dir", os.devnull]
    stdout, _stderr, status = api.run([*isolated, "--strict", "-c", MYPY_SNIPPET])
    assert status == 1, stdout
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert any('Unexpected keyword argument "domainz"' in e and ":8:" in e for e in errors), stdout
    assert any('"cache_size"' in e and '"str"' in e and ":8:" in e for e in errors), stdout
    assert any('"interface"' in e and ":9:" in e for e in errors), stdout
    assert not any(":7:" in e for e in errors), stdout


def in_child(check: Callable[[], bool]) -> bool:
    """Run ``check`` in a forked child; True when it returned True there."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            code = 0 if check() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_refreshes_although_a_refresh_was_in_flight_at_the_fork() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = make(store=store, refresh_interval=10, clock=clock)
    assert get(router, "acme.example.com")[1].startswith("v1")
    store._listeners.clear()  # only the periodic check can tell the router
    store.pin("acme", "v2")
    clock.advance(10)

    def sees_the_pin() -> bool:
        return get(router, "acme.example.com")[1].startswith("v2")

    # Another thread of the parent holds the refresh lock at the fork; the child has no such
    # thread, so the lock it inherited must not stay held there.
    with router._refresh_lock:
        assert in_child(sees_the_pin)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_registers_tenants_with_a_worker_of_its_own() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = make(store=store, clock=clock)
    registrar = router._registrar
    assert registrar is not None
    registrar.add("acme")
    registrar.poke(clock.monotonic() + REGISTER_DELAY)  # the parent's worker exists now

    def registers() -> bool:
        written = threading.Event()
        store.subscribe(written.set)
        registrar.add("globex")
        registrar.poke(clock.monotonic() + REGISTER_DELAY)
        return written.wait(5) and store.tenant("globex").registered is not None

    assert in_child(registers)

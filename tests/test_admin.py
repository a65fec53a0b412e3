"""The admin console in-process: authentication, roles, CSRF, headers, Host isolation, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client, TestResponse

from cohortroute import AdminApp, CohortRouter, RolloutController, TenantRecord, open_store
from cohortroute.admin import host_dispatch
from cohortroute.cli.admin import build_app
from cohortroute.errors import ConfigurationError
from cohortroute.store import Store

OPS_TOKEN = "ops-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def store() -> Store:
    s = open_store("memory://")
    s.register_versions(["v1", "v2"], "v1")
    s.register_tenants([f"t{i:03d}" for i in range(120)] + ["acme"])
    return s


def app_for(store: Store) -> AdminApp:
    return AdminApp(
        store,
        tokens={OPS_TOKEN: "olivia", READ_TOKEN: "rita"},
        operators=["olivia"],
        secret=b"k" * 32,
        hosts=["admin.ops.test", "localhost"],
    )


def login(client: Client, token: str) -> None:
    response = client.post("/login", data={"token": token}, headers={"Host": "admin.ops.test"})
    assert response.status_code == 303, response.text


def get(client: Client, path: str) -> TestResponse:
    return client.get(path, headers={"Host": "admin.ops.test"})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def post(client: Client, path: str, data: dict[str, str]) -> TestResponse:
    return client.post(path, data=data, headers={"Host": "admin.ops.test"})


def test_no_token_gets_401_and_the_login_form(store: Store) -> None:
    client = Client(app_for(store))
    response = get(client, "/")
    assert response.status_code == 401
    assert 'for="f-token"' in response.text
    assert post(client, "/rollout/advance", {}).status_code == 401


def test_bad_token_refused_good_token_sets_a_strict_httponly_cookie(store: Store) -> None:
    client = Client(app_for(store))
    assert post(client, "/login", {"token": "nope" * 5}).status_code == 401
    response = post(client, "/login", {"token": OPS_TOKEN})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert get(client, "/").status_code == 200


def test_forged_session_cookie_is_refused(store: Store) -> None:
    client = Client(app_for(store))
    client.set_cookie("cohortroute_admin", "olivia|9999999999|" + "0" * 64, domain="admin.ops.test")
    assert get(client, "/").status_code == 401


def test_security_headers_on_every_page(store: Store) -> None:
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    for path in ("/", "/rollout", "/tenants", "/audit", "/tenants/acme", "/api/overview"):
        response = get(client, path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "<script>" not in response.text  # no inline script anywhere


def test_read_only_role_cannot_mutate(store: Store) -> None:
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    token = csrf_of(get(client, "/tenants/acme").text)
    response = post(client, "/tenants/acme/pin", {"csrf": token, "version": "v2"})
    assert response.status_code == 403
    assert store.tenant("acme").pin is None


def test_mutation_without_or_with_a_wrong_csrf_token_is_refused(store: Store) -> None:
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    assert post(client, "/tenants/acme/pin", {"version": "v2"}).status_code == 403
    assert post(client, "/tenants/acme/pin", {"version": "v2", "csrf": "0" * 64}).status_code == 403
    assert client.get("/tenants/acme/pin", headers={"Host": "admin.ops.test"}).status_code == 405
    assert store.tenant("acme").pin is None


def test_operator_pin_is_audited_with_the_actor(store: Store) -> None:
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    token = csrf_of(get(client, "/tenants/acme").text)
    assert post(client, "/tenants/acme/pin", {"csrf": token, "version": "v2"}).status_code == 200
    assert store.tenant("acme").pin == "v2"
    entry = store.history("acme", 1)[0]
    assert entry.actor == "olivia" and entry.action.startswith("pin")


def test_auth_hook_gives_the_host_apps_actor(store: Store) -> None:
    app = AdminApp(store, auth=lambda environ: environ.get("REMOTE_USER"), operators=["hank"])
    assert Client(app).get("/").status_code == 401
    response = Client(app).get("/", environ_overrides={"REMOTE_USER": "hank"})
    assert response.status_code == 200 and "hank (operator)" in response.text


def test_refuses_to_start_without_authentication(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHORTROUTE_ADMIN_TOKENS", raising=False)
    with pytest.raises(ConfigurationError, match="needs authentication"):
        AdminApp(store, tokens={})
    with pytest.raises(ConfigurationError, match="without authentication"):
        build_app(store, "0.0.0.0")
    assert build_app(store, "127.0.0.1") is not None
    assert build_app(store, "::1") is not None


def test_a_tenant_host_never_reaches_the_admin(store: Store) -> None:
    admin = app_for(store)
    assert get(Client(admin), "/").status_code == 401
    assert Client(admin).get("/", headers={"Host": "acme.example.com"}).status_code == 404

    def v1(environ: object, start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"tenant app v1"]

    router = CohortRouter({"v1": v1, "v2": v1}, domains=["example.com"], store=store)
    both = Client(host_dispatch(admin, router, "admin.ops.test"))
    for host in ("acme.example.com", "admin.example.com", "www.example.com"):
        response = both.get("/", headers={"Host": host})
        assert "cohortroute admin" not in response.text, host
    assert "Log in" in both.get("/", headers={"Host": "admin.ops.test"}).text


def test_user_strings_are_escaped_everywhere(store: Store) -> None:
    store.tag("acme", "beta", actor=EVIL)
    store.start_rollout("v2", 50, actor=EVIL)
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    token = csrf_of(get(client, "/tenants/acme").text)
    post(client, "/rollout/halt", {"csrf": token, "reason": EVIL})
    post(client, "/tenants/acme/tag", {"csrf": token, "tag": EVIL})  # refused: shown escaped
    pages = [
        "/",
        "/rollout",
        "/audit",
        "/tenants/acme",
        "/tenants?prefix=" + EVIL,
        "/audit?actor=" + EVIL,
        "/tenants/" + EVIL,
        "/rollout/confirm?action=halt",
    ]
    for path in pages:
        text = get(client, path).text
        assert "<script>alert" not in text, path
    assert "&lt;script&gt;" in get(client, "/audit").text


def test_tenant_search_pages_by_prefix(store: Store) -> None:
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    first = get(client, "/tenants?prefix=t").text
    assert "t000" in first and "t049" in first and "t050" not in first and "acme" not in first
    second = get(client, "/tenants?prefix=t&after=t049").text
    assert "t050" in second and "t049" not in second


def test_rollout_percentages_are_shown_once_with_their_sign(store: Store) -> None:
    store.start_rollout("v2", 10, plan=[10, 50, 100])
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    for path in ("/", "/rollout"):
        text = get(client, path).text
        assert '<dd data-live="Percent">10%</dd>' in text, path
        assert "%%" not in text, path


def test_signals_page_charts_each_version_and_escapes_ticket_text(store: Store) -> None:
    import time

    from cohortroute.signals import open_sink
    from cohortroute.signals.model import SignalRow, Ticket

    store.start_rollout("v2", 50)
    sink = open_sink(store)
    minute = int(time.time() // 60)
    rows = [
        SignalRow(
            minute - back,
            tenant,
            version,
            requests=20,
            status=(0, 18, 0, 0, 2),
            histogram=(0, 0, 0, 20) + (0,) * 11,
        )
        for back in range(3)
        for tenant, version in (("acme", "v2"), ("t001", "v1"))
    ]
    sink.add(rows)
    sink.add_ticket(Ticket("acme", "cli", "1", "high", time.time(), "v2", text=EVIL))
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    text = get(client, "/signals?minutes=10").text
    assert text.count("<svg") == 4
    assert 'aria-label="Requests per minute, last 10 minutes"' in text
    assert "v1" in text and "v2" in text
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'href="/tenants/acme"' in text  # worst tenants and tickets link to the tenant
    assert 'http-equiv="refresh"' in text


def test_preview_lists_the_tenants_that_stay_and_why(store: Store) -> None:
    store.start_rollout("v2", 10, plan=[10, 50, 100])
    controller = RolloutController(store, actor="test")
    for i in range(120):
        controller.rollback(f"t{i:03d}")
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    text = get(client, "/rollout").text
    assert "<h3>Stay where they are</h3><ul><li>t0" in text
    assert "rolled back from v2; stays on v1 for this rollout" in text
    assert "&lt;ul&gt;" not in text and "&lt;li&gt;" not in text


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_tenant_names_pages_by_prefix_in_name_order(scheme: str, tmp_path: Path) -> None:
    url = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path / 'names.db'}"
    s = open_store(url)
    s.register_tenants(["b2", "a1", "b1", "b10", "c1", "bz"])
    assert s.tenant_names("b", limit=2) == ["b1", "b10"]
    assert s.tenant_names("b", after="b10", limit=10) == ["b2", "bz"]
    assert s.tenant_names("", after="bz") == ["c1"]
    assert s.tenant_names("d") == []


def test_host_allow_list_understands_ports_and_ipv6(store: Store) -> None:
    admin = AdminApp(store, tokens={OPS_TOKEN: "olivia"}, hosts=["admin.ops.test", "[::1]"])
    client = Client(admin)
    assert client.get("/", headers={"Host": "admin.ops.test:8443"}).status_code == 401
    assert client.get("/", headers={"Host": "[::1]:8700"}).status_code == 401
    assert client.get("/", headers={"Host": "[::2]:8700"}).status_code == 404
    assert client.get("/", headers={"Host": "admin.ops.test.evil:80"}).status_code == 404
    assert client.get("/", headers={"Host": "bad host"}).status_code == 404


def test_overview_counts_come_from_the_background_tally_not_a_scan(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.pin("acme", "v2")
    admin = AdminApp(store, anonymous="read-only", count_every=0)
    client = Client(admin)
    assert "counting..." in client.get("/").text
    tally = admin.counts.wait()
    assert tally is not None and tally.versions == {"v1": 120, "v2": 1}
    assert tally.pins == {"v2": 1}
    scans: list[int] = []
    real = store.tenants

    def counted() -> Iterator[TenantRecord]:
        scans.append(1)
        return real()

    monkeypatch.setattr(store, "tenants", counted)
    text = client.get("/").text
    assert "<td>v1</td><td>default</td>" in text and "<td>120</td>" in text
    assert scans == []  # the page read no tenant record


def test_signals_page_without_signals_says_so(store: Store) -> None:
    store.start_rollout("v2", 10)
    client = Client(app_for(store))
    login(client, READ_TOKEN)
    text = get(client, "/signals").text
    assert "No signals in the last 60 minutes." in text
    assert "None" not in text  # the gate without a request estimate shows no 'None'


def test_console_without_login_answers_only_loopback_names(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHORTROUTE_ADMIN_TOKENS", raising=False)
    client = Client(build_app(store, "127.0.0.1"))
    assert client.get("/", headers={"Host": "127.0.0.1:8700"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:8700"}).status_code == 200
    assert client.get("/", headers={"Host": "rebound.attacker.example:8700"}).status_code == 404

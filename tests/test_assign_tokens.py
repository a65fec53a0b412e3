"""Signed QA overrides: off by default; with keys, a valid token serves its version, anything
else is ignored and counted; tokens minted by `cohortroute override mint`."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, ConfigurationError, RolloutController
from cohortroute._clock import ManualClock
from cohortroute.assign.tokens import mint
from cohortroute.cli import run
from cohortroute.policy import Policy

from .apps import wsgi_version

K1 = "k1-secret-0123456789abcdef"
K2 = "k2-secret-0123456789abcdef"
NOW = 1_790_000_000.0


def make(keys: dict[str, str | bytes] | None, clock: ManualClock) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        override_keys=keys,
        clock=clock,
        register_tenants=False,
    )


def get(router: CohortRouter, tenant: str, token: str | None = None, cookie: bool = False) -> str:
    client = Client(router, use_cookies=False)  # the Cookie header as given
    headers = {"Host": f"{tenant}.example.com"}
    if token is not None and cookie:
        headers["Cookie"] = f"other=1; cohortroute_override={token}"
    elif token is not None:
        headers["X-Cohortroute-Override"] = token
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_off_by_default_a_token_changes_nothing() -> None:
    clock = ManualClock(wall=NOW)
    router = make(None, clock)
    assert get(router, "acme", mint("k1", K1, "acme", "v2", NOW + 10_000)) == "v1 acme default |/"
    assert router.status()["override_tokens"] == {}


def test_a_valid_token_in_a_header_or_cookie_serves_its_version_with_reason_override() -> None:
    clock = ManualClock(wall=NOW)
    router = make({"k1": K1, "k2": K2}, clock)
    token = mint("k1", K1, "acme", "v2", NOW + 100)
    assert get(router, "acme", token) == "v2 acme override |/"
    assert get(router, "acme", token, cookie=True) == "v2 acme override |/"
    assert get(router, "acme", mint("k2", K2, "acme", "v2", NOW + 100)) == "v2 acme override |/"
    assert get(router, "acme") == "v1 acme default |/"  # the cached entry is not changed
    assert router.status()["override_tokens"] == {"accepted": 3}


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
    clock = ManualClock(wall=NOW)
    router = make({"k1": K1}, clock)
    assert get(router, "acme", token) == "v1 acme default |/"
    assert router.status()["override_tokens"] == {counted: 1}


def test_a_token_expires_on_the_routers_clock() -> None:
    clock = ManualClock(wall=NOW)
    router = make({"k1": K1}, clock)
    token = mint("k1", K1, "acme", "v2", NOW + 60)
    assert get(router, "acme", token).startswith("v2 ")
    clock.advance(61)
    assert get(router, "acme", token).startswith("v1 ")


def test_in_a_gated_rollout_a_token_never_moves_a_tenant_off_its_data() -> None:
    clock = ManualClock(wall=NOW)
    router = make({"k1": K1}, clock)
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
        make(keys, ManualClock())


def test_the_cli_mints_a_token_the_router_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", K2)
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["override", "mint", "acme", "v2", "--key-id", "k2", "--expires-in", "15m", "--json"],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    minted = json.loads(out.getvalue())
    assert minted["tenant"] == "acme" and minted["key_id"] == "k2"
    router = make({"k1": K1, "k2": K2}, ManualClock(wall=minted["expires"] - 900))
    assert get(router, "acme", minted["token"]) == "v2 acme override |/"


def test_the_cli_says_where_the_secret_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHORTROUTE_OVERRIDE_KEY", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert run(["override", "mint", "acme", "v2", "--key-id", "k1"], out=out, err=err) == 2
    assert "$COHORTROUTE_OVERRIDE_KEY is not set" in err.getvalue()

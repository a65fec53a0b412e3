"""``rollout start --bucketer unleash`` through the command line, against Unleash's own data.

Each tenant stands for the identifier an Unleash context carries (userId, sessionId or a custom
stickiness field); the rollout's salt is the toggle's groupId. ``explain``, ``status``,
``rollout preview``, ``rollout status`` and the controller must all bucket with the stored
bucketer and agree with the client specification's ``expectedResult``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from cohortroute import RolloutController, open_store
from cohortroute.errors import ValidationError
from cohortroute.policy import check_tenant_name
from cohortroute.store import Store

from .cli_inproc import cli, fails, isolate

DATA = Path(__file__).parent / "data" / "unleash"
OLD, NEW = "2026.11", "2026.12"
BUCKETING = ("gradualRolloutUserId", "flexibleRollout")


def valid_tenant(name: str) -> bool:
    try:
        check_tenant_name(name)
    except ValidationError:
        return False
    return True


def toggles() -> dict[tuple[str, int], dict[str, bool]]:
    """(groupId, percentage) -> {identifier: expected isEnabled}, from every specification
    test of a toggle with one bucketing strategy whose context has the sticky identifier."""
    found: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for path in sorted(DATA.glob("*.json")):
        data = json.loads(path.read_text())
        features = {f["name"]: f for f in data["state"]["features"]}
        for test in data["tests"]:
            strategies = features[test["toggleName"]]["strategies"]
            if len(strategies) != 1 or strategies[0]["name"] not in BUCKETING:
                continue
            params = strategies[0]["parameters"]
            percentage = int(params.get("percentage", params.get("rollout")))
            stickiness = params.get("stickiness", "userId")
            context = test["context"]
            if stickiness == "default":
                ident = context.get("userId") or context.get("sessionId")
            elif stickiness in ("userId", "sessionId"):
                ident = context.get(stickiness)
            else:
                ident = context.get("properties", {}).get(stickiness)
            if ident is not None and valid_tenant(ident):
                found[(params["groupId"], percentage)][ident] = test["expectedResult"]
    return dict(found)


CASES = toggles()


def test_the_specification_gives_tenants_on_both_sides() -> None:
    expected = [e for tenants in CASES.values() for e in tenants.values()]
    assert len(CASES) >= 8 and len(expected) >= 12
    assert expected.count(True) >= 5 and expected.count(False) >= 4


def recorded_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Store]:
    """A SQLite store (its URL and a handle) where a router recorded OLD, the default, and NEW."""
    isolate(monkeypatch)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions([OLD, NEW], OLD, actor="router")
    return url, store


@pytest.mark.parametrize(("group", "percentage"), sorted(CASES), ids=lambda v: str(v))
def test_an_unleash_rollout_from_the_cli_keeps_every_tenant_s_unleash_cohort(
    group: str, percentage: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch)
    expected = CASES[(group, percentage)]
    enabled = sorted(t for t, on in expected.items() if on)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions([OLD, NEW], OLD, actor="router")
    store.register_tenants(expected)

    start = ("rollout", "start", NEW, "--percent", "0", "--bucketer", "unleash", "--salt", group)
    assert cli(*start, store=url).code == 0
    stored = store.policy().rollout
    assert stored is not None and (stored.bucketer, stored.salt) == ("unleash", group)
    status = json.loads(cli("rollout", "status", "--json", store=url).out)
    assert status["rollout"]["bucketer"] == "unleash"

    preview = json.loads(
        cli("rollout", "preview", "--percent", str(percentage), "--json", store=url).out
    )
    assert sorted(preview["moves"]) == enabled
    assert cli("rollout", "set", str(percentage), store=url).code == 0

    for tenant, on in expected.items():
        explained = json.loads(cli("explain", tenant, "--json", store=url).out)
        assert explained["version"] == (NEW if on else OLD), (tenant, explained["detail"])
        assert RolloutController(store).explain(tenant).version == explained["version"]
    counts = json.loads(cli("status", "--json", store=url).out)["tenants"]["by_version"]
    assert counts.get(NEW, 0) == len(enabled)
    store.close()


def test_the_bucketer_changes_cohorts_so_the_default_stays_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, store = recorded_store(tmp_path, monkeypatch)
    tenants = [f"t{i}" for i in range(40)]
    store.register_tenants(tenants)
    salt = "Feature.flexibleRollout.10"
    assert cli("rollout", "start", NEW, "--percent", "50", "--salt", salt, store=url).code == 0
    rollout = store.policy().rollout
    assert rollout is not None and rollout.bucketer == "sha256"
    plain = {t for t in tenants if RolloutController(store).explain(t).version == NEW}
    assert cli("rollout", "rollback", "--settle", "0", store=url).code == 0
    start = ("rollout", "start", NEW, "--percent", "50", "--salt", salt, "--bucketer", "unleash")
    assert cli(*start, store=url).code == 0
    unleash = {t for t in tenants if RolloutController(store).explain(t).version == NEW}
    assert plain != unleash  # the stored bucketer decides, not the default one
    store.close()


def test_an_unknown_bucketer_or_a_missing_group_id_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, store = recorded_store(tmp_path, monkeypatch)
    err = fails(2, "rollout", "start", NEW, "--bucketer", "fnv", store=url)
    assert "unknown bucketer 'fnv'; choose one of sha256, unleash" in err
    err = fails(2, "rollout", "start", NEW, "--bucketer", "unleash", store=url)
    assert "groupId" in err and "--salt" in err
    assert store.policy().rollout is None
    store.close()


def test_the_text_status_names_the_bucketer_unless_it_is_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--json`` always carries it; the text shows it when it changes who is in (not sha256)."""
    url, store = recorded_store(tmp_path, monkeypatch)
    assert cli("rollout", "start", NEW, "--percent", "10", "--salt", "plain", store=url).code == 0
    for command in (("rollout", "status"), ("status",)):
        out = cli(*command, store=url).out
        assert f"{NEW} at 10% (salt plain; started" in out and "bucketer" not in out, out
    assert cli("rollout", "rollback", "--settle", "0", store=url).code == 0
    start = ("rollout", "start", NEW, "--percent", "10", "--bucketer", "unleash")
    assert cli(*start, "--salt", "my-toggle", store=url).code == 0
    for command in (("rollout", "status"), ("status",)):
        out = cli(*command, store=url).out
        assert f"{NEW} at 10% (salt my-toggle; bucketer unleash; started" in out, out
    store.close()


def test_a_fraction_of_a_percent_or_a_blank_group_id_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unleash has whole percentages only: 10.5 would act as 11, so it is refused, not stored."""
    url, store = recorded_store(tmp_path, monkeypatch)
    store.register_tenants([f"t{i}" for i in range(40)])
    unleash = ("--bucketer", "unleash", "--salt", "my-toggle")
    err = fails(2, "rollout", "start", NEW, "--percent", "10.5", *unleash, store=url)
    assert "whole percentages only" in err and "10.5% would serve 11%; give 10% or 11%" in err
    err = fails(2, "rollout", "start", NEW, "--plan", "1,5.5,25", *unleash, store=url)
    assert "plan step 5.5% would serve 6%" in err
    for blank in ("", "   "):
        start = ("rollout", "start", NEW, "--bucketer", "unleash", "--salt", blank)
        err = fails(2, *start, store=url)
        assert f"--salt {blank!r} is blank: give the toggle's groupId" in err
    assert store.policy().rollout is None

    assert cli("rollout", "start", NEW, "--percent", "10", *unleash, store=url).code == 0
    for fraction in ("10.5", "0.5"):
        assert "whole percentages only" in fails(2, "rollout", "set", fraction, store=url)
    status = json.loads(cli("rollout", "status", "--json", store=url).out)["rollout"]
    assert status["percent"] == 10.0
    out = cli("rollout", "set", "11", store=url).out
    assert f"the rollout of {NEW} is now at 11%" in out
    store.close()


def test_explain_hints_a_whole_percentage_for_an_unleash_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, store = recorded_store(tmp_path, monkeypatch)
    tenants = [f"t{i}" for i in range(40)]
    store.register_tenants(tenants)
    start = ("rollout", "start", NEW, "--percent", "10", "--bucketer", "unleash")
    assert cli(*start, "--salt", "my-toggle", store=url).code == 0
    outside = [
        explained
        for explained in (json.loads(cli("explain", t, "--json", store=url).out) for t in tenants)
        if explained["version"] == OLD
    ]
    assert outside
    for explained in outside:
        whole = explained["bucket"] // 100 + 1
        hint = next(h for h in explained["hints"] if "rollout set" in h)
        assert hint.endswith(f"rollout set {whole}%`"), hint
        # the hint's percentage is the least that reaches it
        preview = cli("rollout", "preview", "--percent", str(whole), "--json", store=url).out
        assert explained["tenant"] in json.loads(preview)["moves"]
    store.close()

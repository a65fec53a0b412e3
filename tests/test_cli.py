"""The command line, run in-process against a temporary SQLite store.

Each test runs :func:`cohortroute.cli.run` (the console script's code path) as an operator would
from a terminal next to running routers; the store is prepared through the Python API. A few
tests start a real process where the process is what they test: the installed console script
and the exit codes of ``python -m cohortroute``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cohortroute import CohortRouter, bucket, format_percent, open_store
from cohortroute.store import MemoryStore, Store

from .cli_inproc import cli, fails, ok

OLD, NEW = "2026.11", "2026.12"
SALT = "test-salt"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """USER=tester and no store from the environment, unless a test sets one."""
    monkeypatch.delenv("COHORTROUTE_STORE", raising=False)
    monkeypatch.setenv("USER", "tester")


def python_m(*args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cohortroute [--store URL] ARGS`` in a new process."""
    environment = {k: v for k, v in os.environ.items() if k != "COHORTROUTE_STORE"}
    prefix = ["--store", store] if store is not None else []
    return subprocess.run(
        [sys.executable, "-m", "cohortroute", *prefix, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An empty SQLite store (no versions yet)."""
    empty = f"sqlite:///{tmp_path / 'state.db'}"
    created = open_store(empty)  # the CLI never creates a store: a router would have
    created.revision()
    created.close()
    return empty


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    """The store at ``url`` with the two versions registered, as a router would on start."""
    handle = open_store(url)
    handle.register_versions([OLD, NEW], OLD, actor="router")
    yield handle
    handle.close()


@pytest.fixture
def seeded(url: str, store: Store) -> str:
    """A store with a pin, a tag rule, a tagged tenant and a 30 % rollout; returns its URL."""
    store.pin("qa", NEW, actor="setup")
    store.set_rule("beta", NEW, actor="setup")
    store.tag("initech", "beta", actor="setup")
    store.start_rollout(NEW, 30, salt=SALT, actor="setup")
    return url


def tenant_in_rollout(percent: int, inside: bool) -> tuple[str, int]:
    """A tenant name (and its bucket) that is inside/outside a rollout of ``percent`` points."""
    for i in range(1000):
        name = f"t{i}"
        b = bucket(SALT, name)
        if (b < percent) == inside:
            return name, b
    raise AssertionError("no such tenant")


# --- the entry points ------------------------------------------------------------------------


def test_the_installed_console_script_runs(url: str, store: Store) -> None:
    script = Path(sys.executable).with_name("cohortroute")
    assert script.exists(), "pip install -e . creates the cohortroute console script"
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("cohortroute ")
    status = subprocess.run(
        [str(script), "--store", url, "status"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    assert f"{OLD} (default), {NEW}" in status.stdout


def test_help_exits_0_and_no_command_exits_2() -> None:
    result = cli("--help")
    assert result.code == 0 and result.err == ""
    for verb in ("status", "explain", "pin", "unpin", "tag", "untag", "rule", "rollout", "demo"):
        assert verb in result.out
    result = cli()
    assert result.code == 2 and "COMMAND" in result.err and result.out == ""
    assert cli("--version").out.startswith("cohortroute ")


def test_exit_codes_of_a_real_process(url: str, store: Store) -> None:
    helped = python_m("--help")
    assert helped.returncode == 0 and "rollout" in helped.stdout
    usage = python_m()
    assert usage.returncode == 2 and "COMMAND" in usage.stderr
    refused = python_m("pin", "acme", "2027.01", store=url)
    assert refused.returncode == 2 and "unknown version" in refused.stderr
    store.close()
    _make_schema_newer(url)
    failed = python_m("status", store=url)
    assert failed.returncode == 1 and "upgrade cohortroute" in failed.stderr
    assert "Traceback" not in failed.stderr + refused.stderr + usage.stderr


# --- the store URL -----------------------------------------------------------------------------


def test_missing_store_says_how_to_set_it() -> None:
    message = fails(2, "status")
    assert "--store URL" in message and "COHORTROUTE_STORE" in message
    assert message.count("\n") == 1


def test_store_from_the_environment(
    url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTROUTE_STORE", url)
    result = cli("status")
    assert result.code == 0, result.err
    assert "(revision 1)" in result.out


def test_store_option_before_or_after_the_command(url: str, store: Store) -> None:
    before = cli("--store", url, "status", "--json")
    after = cli("status", "--json", "--store", url)
    assert before.code == after.code == 0
    assert json.loads(before.out) == json.loads(after.out)


def test_the_store_option_beats_the_environment(
    url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTROUTE_STORE", "nonsense")
    result = cli("status", store=url)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("nonsense", "known schemes"),
        ("foo://somewhere", "unknown store scheme 'foo'"),
        ("sqlite://host/state.db", "malformed SQLite store URL"),
        ("sqlite:////no/such/directory/state.db", "does not exist"),
        ("memory://somewhere", "takes no location"),
    ],
)
def test_malformed_or_unusable_store_url_exits_2(bad: str, expected: str) -> None:
    message = fails(2, "status", store=bad)
    assert message.startswith("cohortroute: error: ")
    assert expected in message


def test_unreachable_store_exits_2() -> None:
    pytest.importorskip("redis")
    message = fails(2, "status", store="redis://127.0.0.1:1/0")
    assert "redis://127.0.0.1:1/0" in message and "running and reachable" in message


def _make_schema_newer(url: str) -> None:
    """Mark the SQLite store at ``url`` as written by a newer cohortroute."""
    path = url[len("sqlite:///") :]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE cohortroute_meta SET value = 99 WHERE key = 'schema_version'")
    db.close()


def test_a_failing_store_exits_1(url: str, store: Store) -> None:
    store.close()
    _make_schema_newer(url)
    message = fails(1, "status", store=url)
    assert "newer cohortroute" in message and "upgrade cohortroute" in message


# --- status ----------------------------------------------------------------------------------


def test_status_of_an_empty_store(url: str) -> None:
    out = ok("status", store=url)
    assert "versions:  none yet" in out and "rollout:   none" in out
    data = json.loads(ok("status", "--json", store=url))
    assert data["versions"] == [] and data["default"] is None and data["revision"] == 0


def test_status_text(seeded: str) -> None:
    out = ok("status", store=seeded)
    assert f"versions:  {OLD} (default), {NEW}" in out
    assert f"rules:     beta -> {NEW}" in out
    assert f"rollout:   {NEW} at 30% (salt {SALT};" in out
    assert "tenants:   2 with a stored record" in out
    assert f"{NEW}      2  (pin 1, tag 1)" in out


def test_status_json_shape(seeded: str, store: Store) -> None:
    name, _ = tenant_in_rollout(3000, inside=True)
    store.tag(name, "paid")
    data = json.loads(ok("status", "--json", store=seeded))
    assert set(data) == {
        *("store", "revision", "default", "versions", "retired", "rules", "rollout", "tenants")
    }
    assert data["retired"] == []
    assert data["store"] == seeded
    assert data["revision"] == store.revision()
    assert data["default"] == OLD and data["versions"] == [OLD, NEW]
    assert data["rules"] == [{"tag": "beta", "version": NEW}]
    rollout = data["rollout"]
    assert set(rollout) == {
        "candidate",
        "percent",
        "salt",
        "started_at",
        "plan",
        "step",
        "every",
        "step_started_at",
        "auto",
        "halted",
        "halt_reason",
        "gated",
        "next_change",
    }
    # One unit in every JSON output: a number of percent (30 % is 30.0, not "30%" or 3000).
    assert rollout["candidate"] == NEW and rollout["percent"] == 30.0
    assert rollout["salt"] == SALT and rollout["next_change"] is None
    assert data["tenants"] == {
        "stored": 3,
        "by_version": {OLD: 0, NEW: 3},
        "by_reason": {"pin": 1, "rollout": 1, "tag": 1},
    }


# --- explain ---------------------------------------------------------------------------------


def test_explain_a_tenant_outside_the_rollout(seeded: str) -> None:
    name, b = tenant_in_rollout(3000, inside=False)
    out = ok("explain", name, store=seeded)
    assert out.startswith(f"{name} -> {OLD} (reason: default)\n")
    assert f"bucket {b} >= 3000 of 10000" in out
    assert f"once the percentage passes {format_percent(b)}" in out
    assert f"rollout set {format_percent(b + 1)}" in out


def test_explain_a_tenant_inside_the_rollout(seeded: str) -> None:
    name, b = tenant_in_rollout(3000, inside=True)
    out = ok("explain", name.upper(), store=seeded)  # tenants are case-insensitive
    assert out.startswith(f"{name} -> {NEW} (reason: rollout)\n")
    assert f"while the percentage stays above {format_percent(b)}" in out


def test_explain_a_pinned_tenant_says_how_to_release_it(seeded: str) -> None:
    out = ok("explain", "qa", store=seeded)
    assert out.startswith(f"qa -> {NEW} (reason: pin)\n")
    assert f"--store {seeded} unpin qa`" in out


def test_explain_a_tagged_tenant(seeded: str) -> None:
    out = ok("explain", "initech", store=seeded)
    assert out.startswith(f"initech -> {NEW} (reason: tag)\n")
    assert "untag initech beta" in out and "rule --remove beta" in out


def test_explain_without_the_store_option_in_hints(
    seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTROUTE_STORE", seeded)
    result = cli("explain", "qa")
    assert result.code == 0 and "`cohortroute unpin qa`" in result.out


def test_explain_a_tenant_kept_by_the_ratchet_or_held_back(seeded: str, store: Store) -> None:
    kept, _ = tenant_in_rollout(3000, inside=False)
    store.update_tenant(kept, "test", lambda record, policy: replace(record, ratchet=NEW))
    out = ok("explain", kept, store=seeded)
    assert out.startswith(f"{kept} -> {NEW} (reason: rollout)\n")
    assert f"  ratchet: {NEW}\n" in out and "only a rollback moves it back" in out

    held, _ = tenant_in_rollout(3000, inside=True)
    store.update_tenant(held, "test", lambda record, policy: replace(record, state={"held": SALT}))
    out = ok("explain", held, store=seeded)
    assert out.startswith(f"{held} -> {OLD} (reason: default)\n")
    assert f"rolled back from this rollout of {NEW}" in out
    assert "once the percentage passes" not in out


def test_explain_json_shape(seeded: str) -> None:
    data = json.loads(ok("explain", "qa", "--json", store=seeded))
    assert set(data) == {
        "tenant",
        "version",
        "reason",
        "detail",
        "backend",
        "errors",
        "bucket",
        "default",
        "pin",
        "tags",
        "ratchet",
        "rollout",
        "maintenance",
        "revision",
        "hints",
    }
    assert (data["tenant"], data["version"], data["reason"]) == ("qa", NEW, "pin")
    assert (data["backend"], data["errors"]) == ("pin", [])
    assert data["pin"] == NEW and data["tags"] == [] and data["default"] == OLD
    assert data["maintenance"] is False
    assert data["rollout"]["percent"] == 30.0
    assert data["hints"] and all(isinstance(h, str) for h in data["hints"])


def test_explain_matches_what_a_router_decides(seeded: str, store: Store) -> None:
    store.tag("acme", "beta")
    store.tag("globex", "paid")
    store.pin("hooli", OLD)
    router = CohortRouter({OLD: _app, NEW: _app}, domains=["example.com"], store=seeded)
    try:
        for tenant in ["acme", "globex", "hooli", "qa", "initech", "t1", "t2", "t3", "t4", "t5"]:
            data = json.loads(ok("explain", tenant, "--json", store=seeded))
            expected = router.explain(tenant)
            assert (data["version"], data["reason"], data["bucket"], data["detail"]) == (
                expected.version,
                expected.reason.value,
                expected.bucket,
                expected.detail,
            )
    finally:
        router.store.close()


def test_explain_on_a_store_without_versions(url: str) -> None:
    message = fails(2, "explain", "acme", store=url)
    assert "no default version yet" in message and "router" in message


def test_explain_rejects_an_invalid_tenant(store: Store, url: str) -> None:
    assert "invalid tenant" in fails(2, "explain", "not_a_label!", store=url)


# --- pins, tags, rules -----------------------------------------------------------------------


def test_pin_and_unpin(store: Store, url: str) -> None:
    assert ok("pin", "acme", NEW, store=url) == f"pinned acme to {NEW} (revision 2)\n"
    assert store.tenant("acme").pin == NEW
    assert "already pinned" in ok("pin", "acme", NEW, store=url)
    assert ok("unpin", "acme", store=url) == "unpinned acme (revision 3)\n"
    assert store.tenant("acme").pin is None
    assert "nothing changed" in ok("unpin", "acme", store=url)


def test_pin_an_unknown_version_lists_the_known_ones(store: Store, url: str) -> None:
    message = fails(2, "pin", "acme", "2027.01", store=url)
    assert f"unknown version '2027.01'; known versions: {OLD}, {NEW}" in message
    assert store.tenant("acme").pin is None


def test_pin_on_a_fresh_store_says_how_versions_become_known(url: str) -> None:
    message = fails(2, "pin", "acme", NEW, store=url)
    assert "none yet" in message and "router that mounts it starts" in message


def test_pin_rejects_an_invalid_tenant(store: Store, url: str) -> None:
    assert "invalid tenant" in fails(2, "pin", "acme_corp", NEW, store=url)


def test_tag_and_untag(store: Store, url: str) -> None:
    assert ok("tag", "acme", "Beta", store=url) == "tagged acme beta (revision 2)\n"
    assert store.tenant("acme").tags == {"beta"}
    assert "already has tag beta" in ok("tag", "acme", "beta", store=url)
    assert ok("untag", "acme", "beta", store=url) == "removed tag beta from acme (revision 3)\n"
    assert store.tenant("acme").tags == frozenset()
    assert "invalid tag" in fails(2, "tag", "acme", "no spaces", store=url)


def test_rule_set_and_remove(store: Store, url: str) -> None:
    assert "tenants tagged beta now get 2026.12" in ok("rule", "beta", NEW, store=url)
    assert store.policy().rules == (("beta", NEW),)
    assert ok("rule", "--remove", "beta", store=url) == "removed the rule for beta (revision 3)\n"
    assert store.policy().rules == ()
    assert "no rule for beta" in ok("rule", "--remove", "beta", store=url)
    assert "known versions" in fails(2, "rule", "beta", "9.9", store=url)


def test_rule_needs_exactly_one_of_version_or_remove(store: Store, url: str) -> None:
    assert "--remove to delete" in fails(2, "rule", "beta", store=url)
    assert "not both" in fails(2, "rule", "beta", NEW, "--remove", store=url)


# --- rollouts ----------------------------------------------------------------------------------


def test_rollout_start_and_set(store: Store, url: str) -> None:
    assert "started the rollout of 2026.12 at 5%" in ok(
        "rollout", "start", NEW, "--percent", "5%", store=url
    )
    rollout = store.policy().rollout
    assert rollout is not None and rollout.percent == 500 and rollout.candidate == NEW
    assert ok("rollout", "set", "0.5", store=url) == (
        "the rollout of 2026.12 is now at 0.5% (revision 3)\n"
        "the ratchet kept 0 tenant(s) on 2026.12 that 0.5% no longer reaches (only a rollback "
        "moves them back)\n"
    )
    assert store.policy().rollout.percent == 50  # type: ignore[union-attr]
    assert "already at 0.5%; nothing changed" in ok("rollout", "set", "0.50", store=url)


def test_rollout_start_with_a_salt_and_default_percent(store: Store, url: str) -> None:
    ok("rollout", "start", NEW, "--salt", "fixed", store=url)
    rollout = store.policy().rollout
    assert rollout is not None and rollout.salt == "fixed" and rollout.percent == 0


@pytest.mark.parametrize("bad", ["abc", "101", "0.001", "-5", "5%%"])
def test_a_bad_percent_exits_2(store: Store, url: str, bad: str) -> None:
    message = fails(2, "rollout", "start", NEW, "--percent", bad, store=url)
    assert "percentage" in message
    assert store.policy().rollout is None
    assert "percentage" in fails(2, "rollout", "set", bad, store=url)


def test_rollout_conflicts_exit_2(store: Store, url: str) -> None:
    assert "no rollout is running" in fails(2, "rollout", "set", "10", store=url)
    assert "already the default" in fails(2, "rollout", "start", OLD, store=url)
    ok("rollout", "start", NEW, store=url)
    assert "already running" in fails(2, "rollout", "start", NEW, store=url)
    assert "known versions" in fails(2, "rollout", "start", "3.0", store=url)


def test_rollout_needs_an_action(store: Store, url: str) -> None:
    result = cli("rollout", store=url)
    assert result.code == 2 and "ACTION" in result.err


# --- history and actors ------------------------------------------------------------------------


def test_history_is_newest_first_and_records_the_actor(store: Store, url: str) -> None:
    ok("pin", "acme", NEW, store=url)
    ok("--actor", "alice", "tag", "acme", "beta", store=url)
    ok("rule", "beta", NEW, "--actor", "bob", store=url)
    entries = json.loads(ok("history", "--json", store=url))["entries"]
    assert [(e["action"], e["actor"]) for e in entries[:3]] == [
        ("rule", "bob"),
        ("tag", "alice"),
        ("pin", "tester"),  # $USER
    ]
    revisions = [e["revision"] for e in entries]
    assert revisions == sorted(revisions, reverse=True)
    assert set(entries[0]) == {
        "revision",
        "at",
        "time",
        "actor",
        "action",
        "tenant",
        "before",
        "after",
    }
    assert entries[2]["tenant"] == "acme" and entries[2]["before"] is None
    assert entries[2]["after"] == NEW and entries[2]["time"].endswith("+00:00")


def test_history_text_limit_and_tenant(store: Store, url: str) -> None:
    ok("pin", "acme", NEW, store=url)
    ok("pin", "globex", NEW, store=url)
    ok("unpin", "acme", store=url)
    lines = ok("history", "--limit", "2", store=url).splitlines()
    assert lines[0].split() == ["REV", "TIME", "(UTC)", "ACTOR", "ACTION", "TENANT", "CHANGE"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "4" and "unpin" in lines[1] and f"{NEW} => -" in lines[1]
    assert lines[2].split()[0] == "3" and "globex" in lines[2]
    acme = json.loads(ok("history", "acme", "--json", store=url))["entries"]
    assert [e["action"] for e in acme] == ["unpin", "pin"]
    assert ok("history", "nobody", store=url) == "no changes recorded for nobody\n"
    assert fails(2, "history", "--limit", "0", store=url)


def test_memory_store_changes_warn_that_they_vanish() -> None:
    result = cli("rollout", "set", "5", store="memory://")
    assert result.code == 2  # a fresh memory store has no rollout
    result = cli("unpin", "acme", store="memory://")
    assert result.code == 0 and "memory:// lives only in this process" in result.err


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


# --- one percent unit in every JSON output ------------------------------------------------------


def test_every_json_output_gives_percentages_in_percent(store: Store, url: str) -> None:
    ok("rollout", "start", NEW, "--plan", "5,12.5,50", "--salt", SALT, store=url)
    status = json.loads(ok("status", "--json", store=url))["rollout"]
    explained = json.loads(ok("explain", "acme", "--json", store=url))["rollout"]
    assert status == explained
    assert status["percent"] == 5.0 and status["plan"] == [5.0, 12.5, 50.0]
    preview = json.loads(ok("rollout", "preview", "--json", store=url))
    assert (preview["from_percent"], preview["to_percent"]) == (5.0, 12.5)
    ok("rollout", "set", "12.5", store=url)
    entries = json.loads(ok("history", "--json", store=url))["entries"]
    started = next(e for e in entries if e["action"] == "rollout-start")
    assert started["after"]["percent"] == 5.0 and started["after"]["plan"] == [5.0, 12.5, 50.0]
    moved = next(e for e in entries if e["action"] == "rollout-set" and e["tenant"] is None)
    after = moved["after"]["percent"] if isinstance(moved["after"], dict) else moved["after"]
    assert after == 12.5


# --- credentials in the store URL never reach the output -----------------------------------------

PASSWORDS = ("hunter2", "hunter3")
SECRET_URL = "crsecret://admin:hunter2@[::1]:6379/0?password=hunter3&db=1"


class SecretStore(MemoryStore, scheme="crsecret"):
    """A memory store behind a URL with credentials, as Redis and PostgreSQL URLs carry them."""

    @classmethod
    def from_url(cls, url: str) -> SecretStore:
        handle = cls()
        handle.register_versions([OLD, NEW], OLD, actor="router")
        handle.pin("qa", NEW, actor="setup")
        handle.start_rollout(NEW, 30, salt=SALT, actor="setup")
        return handle


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("status", "--json"),
        ("explain", "qa"),
        ("explain", "acme", "--json"),
        ("rollout", "halt"),
    ],
    ids=" ".join,
)
def test_the_store_password_is_never_printed(args: tuple[str, ...]) -> None:
    result = cli(*args, store=SECRET_URL)
    assert result.code == 0, result.err
    for password in PASSWORDS:
        assert password not in result.out + result.err
    if args[0] != "status":
        assert "--store 'crsecret://admin:***@[::1]:6379/0?password=***&db=1'" in result.out


def test_status_shows_the_redacted_store_url() -> None:
    text = ok("status", store=SECRET_URL)
    assert "store:     crsecret://admin:***@[::1]:6379/0?password=***&db=1 (revision" in text
    data = json.loads(ok("status", "--json", store=SECRET_URL))
    assert data["store"] == "crsecret://admin:***@[::1]:6379/0?password=***&db=1"

"""The one redaction of store URLs: every credential form is masked, nothing else changes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from cohortroute.errors import ConfigurationError
from cohortroute.store import open_store
from cohortroute.store._urls import redact


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # user info with and without a user
        ("redis://:pw@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("postgresql://app:s3cret@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://app:p%40ss@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://a:b:c@db/prod", "postgresql://a:***@db/prod"),
        ("postgresql://a:b@c@db/prod", "postgresql://a:***@db/prod"),
        # IPv6 hosts keep their brackets
        ("redis://:pw@[::1]:6379", "redis://:***@[::1]:6379"),
        ("redis://u:pw@[fe80::1%25eth0]:6379/2", "redis://u:***@[fe80::1%25eth0]:6379/2"),
        ("redis://[::1]:6379/0?prefix=a", "redis://[::1]:6379/0?prefix=a"),
        # credentials in the query
        ("postgresql://db/prod?password=secret", "postgresql://db/prod?password=***"),
        (
            "postgresql://db/prod?sslmode=require&password=secret&schema=x",
            "postgresql://db/prod?sslmode=require&password=***&schema=x",
        ),
        ("redis://h/0?pass=a&pwd=b&passwd=c", "redis://h/0?pass=***&pwd=***&passwd=***"),
        ("redis://h/0?token=t&api_key=k&secret=s", "redis://h/0?token=***&api_key=***&secret=***"),
        ("postgresql://h/db?sslpassword=x", "postgresql://h/db?sslpassword=***"),
        ("redis://h/0?Password=x#frag", "redis://h/0?Password=***#frag"),
        ("redis://:pw@[::1]/0?token=t", "redis://:***@[::1]/0?token=***"),
        # no credentials: unchanged, byte for byte
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("postgresql://app@db/prod?schema=a%20b", "postgresql://app@db/prod?schema=a%20b"),
        ("sqlite:////srv/state.db?timeout=10", "sqlite:////srv/state.db?timeout=10"),
        ("memory://", "memory://"),
        ("redis://h/0?prefix=", "redis://h/0?prefix="),
        ("not a url", "not a url"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize("url", ["redis://:hunter2@[::1", "redis://u:hunter2@h/0?x=[", "::"])
def test_redact_never_raises_on_malformed_urls(url: str) -> None:
    assert "hunter2" not in redact(url)


# --- what open_store refuses, for every backend ---------------------------------------------------

MALFORMED = [
    "redis://[::1",
    "redis://:hunter2@[::1:6379/0",
    "rediss://[fe80::1/0",
    "redis://h:port/0",
    "redis://h:99999/0",
    "postgresql://[bad]:x/",
    "postgresql://u:hunter2@[::1]:99999/db",
    "postgres://[::1/db",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_configuration_errors(url: str) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigurationError, match="malformed") as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


NUMBERS = ["nan", "inf", "-1", "1e3", "0x10", "1_0", " 2", "2 ", "\uff12", "\u0662", "", "3601"]


@pytest.mark.parametrize("value", NUMBERS)
@pytest.mark.parametrize(
    ("base", "name"),
    [
        ("sqlite:///state.db", "timeout"),
        ("redis://127.0.0.1:1/0", "timeout"),
        ("redis://127.0.0.1:1/0", "connect_timeout"),
        ("redis://127.0.0.1:1/0", "health_check_interval"),
        ("redis://127.0.0.1:1/0", "max_connections"),
        ("postgresql://127.0.0.1:1/db", "timeout"),
        ("postgresql://127.0.0.1:1/db", "connect_timeout"),
        ("postgresql://127.0.0.1:1/db", "keepalives_idle"),
        ("postgresql://127.0.0.1:1/db", "tcp_user_timeout"),
    ],
)
def test_every_numeric_url_option_is_an_ascii_number_in_range(
    base: str, name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    monkeypatch.chdir(tmp_path)
    if value == "3601":  # just over the top of the option's range
        value = {"tcp_user_timeout": "3600001", "max_connections": "100001"}.get(name, value)
    with pytest.raises(ConfigurationError, match=rf"invalid {name}=.*give .*from \S+ to \S+"):
        open_store(f"{base}?{name}={quote(value)}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "attribute", "expected"),
    [
        ("sqlite:///state.db?timeout=0", "timeout", 0.0),
        ("sqlite:///state.db?timeout=3600", "timeout", 3600.0),
        ("sqlite:///state.db?timeout=2.5", "timeout", 2.5),
        ("redis://127.0.0.1:1/0?timeout=0.25", "timeout", 0.25),
        ("postgresql://127.0.0.1:1/db?connect_timeout=10", "connect_timeout", 10.0),
    ],
)
def test_numbers_in_range_are_taken(
    url: str, attribute: str, expected: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    monkeypatch.chdir(tmp_path)
    store = open_store(url)
    assert getattr(store, attribute) == expected
    store.close()


@pytest.mark.parametrize(
    ("name", "instead"),
    [("socket_timeout", "timeout"), ("socket_connect_timeout", "connect_timeout")],
)
def test_redis_driver_timeouts_that_would_override_ours_are_refused(
    name: str, instead: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError, match=f"use {instead}= instead"):
        open_store(f"redis://127.0.0.1:1/0?{name}=nan")


@pytest.mark.parametrize(
    "url", ["sqlite:///state.db?mode=ro", "redis://127.0.0.1:1/0?mode=x", "postgresql://h/db?mode="]
)
def test_mode_is_rw_or_rwc(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"mode=rwc .* or mode=rw"):
        open_store(url)

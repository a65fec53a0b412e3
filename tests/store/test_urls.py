"""The one redaction of store URLs: every credential form is masked, nothing else changes."""

from __future__ import annotations

import pytest

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

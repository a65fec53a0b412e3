"""Host validation and tenant resolution."""

from __future__ import annotations

import pytest
from hypothesis import given

from cohortroute.errors import ConfigurationError, InvalidHostError
from cohortroute.tenancy import SubdomainResolver, parse_host

from .strategies import any_host_text, labels

resolver = SubdomainResolver(["example.com", "eu.example.com"])


def tenant_of(raw: str) -> str | None:
    return resolver(parse_host(raw))


@pytest.mark.parametrize(
    ("raw", "tenant"),
    [
        ("acme.example.com", "acme"),
        ("ACME.Example.com.:8080", "acme"),
        ("acme.example.com:443", "acme"),
        ("acme.example.com.", "acme"),
        ("acme-2.example.com", "acme-2"),
        ("42.example.com", "42"),
        ("acme.eu.example.com", "acme"),  # the longest domain wins
        ("example.com", None),
        ("www.example.com", None),
        ("eu.example.com", None),
        ("a.b.example.com", None),
        ("127.0.0.1", None),
        ("127.0.0.1:8000", None),
        ("[::1]", None),
        ("[::1]:8000", None),
    ],
)
def test_tenant_from_host(raw: str, tenant: str | None) -> None:
    assert tenant_of(raw) == tenant


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " acme.example.com",
        "acme .example.com",
        "acme.example.com\r\nX: y",
        "acme\x00.example.com",
        "user@acme.example.com",
        "acme.example.com/path",
        "acme.example.com?x",
        "acme.example.com#x",
        "acme\\.example.com",
        "acme.example.com:65536",
        "acme.example.com:+443",
        "acme.example.com:4_43",
        "acme.example.com:0",
        "acme.example.com:",
        "acme.example.com:80:80",
        "x" * 64 + ".example.com",
        ("a" * 60 + ".") * 5 + "example.com",
        "bücher.example.com",
        "acme..example.com",
        "-acme.example.com",
        "acme-.example.com",
        "acme.example.com..",
        "under_score.example.com",
        "[::1",
        "[::g]:80",
        "[::1]x",
        "*.example.com",
    ],
)
def test_malformed_hosts_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidHostError):
        tenant_of(raw)


def test_hosts_outside_every_domain_are_rejected_unless_allowed() -> None:
    with pytest.raises(InvalidHostError, match="not under any domain"):
        tenant_of("acme.evil.com")
    with pytest.raises(InvalidHostError):
        tenant_of("notexample.com")  # a suffix match must be on a label boundary
    lenient = SubdomainResolver(["example.com"], allow_unknown_hosts=True)
    assert lenient(parse_host("acme.evil.com")) is None


def test_reserved_labels_are_configurable() -> None:
    custom = SubdomainResolver(["example.com"], reserved={"www", "api", "admin"})
    assert custom("api.example.com") is None
    assert custom("acme.example.com") == "acme"


@pytest.mark.parametrize(
    "domains",
    [
        [],
        "example.com",
        ["https://example.com"],
        ["example.com:80"],
        ["*.example.com"],
        ["127.0.0.1"],
        [" example.com"],
        [""],
        [42],
    ],
)
def test_bad_domains_are_configuration_errors(domains: object) -> None:
    with pytest.raises(ConfigurationError):
        SubdomainResolver(domains)  # type: ignore[arg-type]


@given(any_host_text)
def test_parser_never_raises_anything_but_invalid_host_and_is_idempotent(raw: str) -> None:
    try:
        host = parse_host(raw)
    except InvalidHostError:
        return
    assert parse_host(host) == host
    assert host == host.lower()
    assert host.startswith("[") or ":" not in host  # the port is gone
    try:
        tenant = resolver(host)
    except InvalidHostError:
        return
    if tenant is not None:
        assert f"{tenant}." in host and "." not in tenant


@given(labels)
def test_every_valid_label_is_a_tenant_under_the_domain(label: str) -> None:
    expected = None if label in ("www", "eu") else label
    assert tenant_of(f"{label}.example.com") == expected
    assert tenant_of(f"{label.upper()}.EXAMPLE.COM.:8443") == expected

"""Host validation and tenant resolution."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohortroute.errors import ConfigurationError, InvalidHostError, ValidationError
from cohortroute.policy import check_tenant_name
from cohortroute.tenancy import MAX_HOST_LENGTH, SubdomainResolver, is_valid_label, parse_host

from .strategies import any_host_text, labels, unicode_host_text

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
        ("xn--bcher-kva.example.com", "xn--bcher-kva"),  # bücher, as browsers send it
        ("XN--BCHER-KVA.example.com:8443", "xn--bcher-kva"),
        ("acme.example.com:1", "acme"),
        ("acme.example.com:65535", "acme"),
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
        # Unicode that case-folds or lower-cases into ASCII: never another tenant.
        "\u212acme.example.com",  # KELVIN SIGN lower-cases to 'k'
        "acme.\u212a.example.com",
        "\u017fhop.example.com",  # LONG S case-folds to 's'
        "\uff41cme.example.com",  # FULLWIDTH A
        "acme.example.com:\uff18\uff10",  # fullwidth digits in the port
        "acme.example.com:\u0668\u0660",  # Arabic-Indic digits in the port
        # Ports with leading zeros.
        "acme.example.com:0080",
        "acme.example.com:00443",
        "acme.example.com:00",
        "[::1]:080",
        # xn-- labels that are not valid A-labels.
        "xn--.example.com",
        "xn--zz.example.com",  # does not decode
        "xn--abc-.example.com",  # decodes to plain ASCII 'abc'
        "xn--ls8h.example.com",  # an emoji: not allowed by IDNA 2008
        "xn--bcher-kva9.example.com",
        "xn--tda.xn--zz.example.com",
        "xn--a-kfa.example.com",  # "aÜ" has an upper-case letter
        "acme.xn--zz",
        # Over-long: 253 characters is the longest name.
        "a." * 127 + "com",
        "x" * MAX_HOST_LENGTH + ".example.com",
        "x" * 8000,
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


def test_idna_a_labels_are_checked_in_tenant_names_too() -> None:
    assert check_tenant_name("xn--bcher-kva") == "xn--bcher-kva"
    for bad in ("xn--zz", "xn--abc-", "xn--ls8h", "\u212acme", "\u017fhop", "\uff41cme"):
        with pytest.raises(ValidationError, match="invalid tenant"):
            check_tenant_name(bad)


def test_the_longest_valid_host_is_accepted_and_one_more_character_is_not() -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    raw = name + ".:65535"
    assert len(raw) == MAX_HOST_LENGTH
    assert parse_host(raw) == name
    with pytest.raises(InvalidHostError, match="over 260 characters"):
        parse_host("a" + raw)


@given(unicode_host_text)
def test_accepted_hosts_are_ascii_and_resolve_to_valid_tenant_names(raw: str) -> None:
    try:
        host = parse_host(raw)
        tenant = resolver(host)
    except InvalidHostError:
        return
    assert raw.isascii() and host.isascii()
    assert tenant is None or check_tenant_name(tenant) == tenant


@given(st.text(min_size=1, max_size=20))
def test_no_non_ascii_host_or_tenant_name_is_folded_into_an_ascii_one(text: str) -> None:
    """Case folding and normalisation never map a non-ASCII name onto an ASCII tenant."""
    if text.isascii():
        return
    variants = {text, text.lower(), text.casefold(), unicodedata.normalize("NFKC", text)}
    for variant in variants:
        if variant.isascii():  # NFKC('¹') is '1': another name, which anyone may send as such
            continue
        with pytest.raises(InvalidHostError):
            parse_host(f"{variant}.example.com")
        with pytest.raises(ValidationError):
            check_tenant_name(variant)
    assert not is_valid_label(text)


def test_extra_hosts_have_no_tenant_on_any_port_and_open_nothing_else() -> None:
    probes = SubdomainResolver(["example.com"], extra_hosts=["localhost", "Shop-Svc"])
    for raw in ("localhost", "LOCALHOST:8000", "shop-svc:8000", "shop-svc."):
        assert probes(parse_host(raw)) is None
    assert probes(parse_host("acme.example.com")) == "acme"
    for raw in ("evil.com", "x.localhost", "localhost.evil.com", "shop-svc2", "shop"):
        with pytest.raises(InvalidHostError, match="not under any domain"):
            probes(parse_host(raw))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("localhost", "a list of names"),
        (["localhost:8000"], "no scheme or port"),
        (["http://shop-svc"], "no scheme or port"),
        ([" localhost"], "bare host name"),
        (["127.0.0.1"], "IP addresses already have no tenant"),
        (["acme.example.com"], "under the configured domain"),
        (["example.com"], "under the configured domain"),
        ([42], "host names like"),
    ],
)
def test_bad_extra_hosts_are_configuration_errors(extra: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SubdomainResolver(["example.com"], extra_hosts=extra)  # type: ignore[arg-type]

"""``cohortroute override mint`` refuses the tokens no router would honour: a version the store
does not know, a secret shorter than routers accept, a key id routers cannot be given. The
secret and key id rules are the routers' own (``cohortroute.assign.tokens.check_key``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute import CohortRouter, ConfigurationError, open_store
from cohortroute._clock import ManualClock
from cohortroute.assign.tokens import mint

from .apps import wsgi_version
from .cli_inproc import cli, fails, isolate

SECRET = "k1-secret-0123456789abcdef"
MINT = ("override", "mint", "globex")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store where a router recorded v1 (the default) and v2."""
    isolate(monkeypatch)
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", SECRET)
    address = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(address)
    store.register_versions(["v1", "v2"], "v1", actor="router")
    store.close()
    return address


def router(keys: dict[str, str | bytes]) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        override_keys=keys,
        clock=ManualClock(),
        register_tenants=False,
    )


def test_a_version_the_store_does_not_know_is_refused_with_the_known_ones(url: str) -> None:
    err = fails(2, *MINT, "v3", "--key-id", "k1", store=url)
    assert "unknown version 'v3'; known versions: v1, v2" in err
    assert cli(*MINT, "v2", "--key-id", "k1", store=url).out.count(".") == 1


def test_a_retired_version_is_refused_as_pin_refuses_it(url: str) -> None:
    assert cli("versions", "retire", "v2", store=url).code == 0
    pin = fails(2, "pin", "globex", "v2", store=url)
    assert "version v2 is retired" in pin
    assert "version v2 is retired" in fails(2, *MINT, "v2", "--key-id", "k1", store=url)


def test_without_a_readable_store_the_version_is_minted_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch)
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", SECRET)
    alone = cli(*MINT, "v3", "--key-id", "k1")  # no store: minting needs none
    assert alone.code == 0 and alone.err == ""
    missing = cli(*MINT, "v3", "--key-id", "k1", store=f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 0 and missing.out.count(".") == 1
    assert "note: the store could not be read, so v3 was not checked" in missing.err


def test_a_secret_routers_refuse_is_refused_with_their_message(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", "short")
    err = fails(2, *MINT, "v2", "--key-id", "k1", store=url)
    with pytest.raises(ConfigurationError) as refused:
        router({"k1": "short"})
    assert str(refused.value) in err
    assert "shorter than 16 bytes" in err
    with pytest.raises(ConfigurationError, match="shorter than 16 bytes"):
        mint("k1", "short", "globex", "v2", 2_000_000_000)
    monkeypatch.setenv("COHORTROUTE_OVERRIDE_KEY", "x" * 16)  # the minimum is enough
    assert cli(*MINT, "v2", "--key-id", "k1", store=url).code == 0


@pytest.mark.parametrize("key_id", ["", "k 1", " k1", "k1\t", "k\n1"])
def test_a_key_id_routers_refuse_is_refused(url: str, key_id: str) -> None:
    err = fails(2, *MINT, "v2", "--key-id", key_id, store=url)
    assert f"override key id {key_id!r} is not usable" in err
    with pytest.raises(ConfigurationError, match="is not usable: give a non-empty word"):
        router({key_id: SECRET})
    with pytest.raises(ConfigurationError, match="is not usable"):
        mint(key_id, SECRET, "globex", "v2", 2_000_000_000)

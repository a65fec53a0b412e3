"""`cohortroute proxy ...` option errors found by trying them: an --interval that is not a
finite number of seconds is a usage error, not a busy loop or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_proxy_cli import proxy, url  # noqa: F401 - url is a fixture


@pytest.mark.parametrize("interval", ["nan", "inf", "-inf", "0", "-1"])
@pytest.mark.parametrize("kind", ["nginx", "haproxy", "apache"])
def test_an_interval_that_is_not_finite_seconds_is_refused(
    url: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    kind: str,
    interval: str,
) -> None:
    code, out, err = proxy(
        url, tmp_path, kind, "--upstream", "2026.11=127.0.0.1:8001", f"--interval={interval}"
    )
    assert code == 2
    assert "--interval must be a number of seconds > 0" in err
    assert out == ""
    assert not (tmp_path / "m.map").exists()


@pytest.mark.parametrize(
    "address", ["/run/haproxy/admin.sock", "unix:relative.sock", "ipv4@127.0.0.1:9999", "9999"]
)
def test_a_malformed_runtime_api_is_refused_before_watching(
    url: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    address: str,
) -> None:
    # Without the check, the watch started and retried an address that can never work.
    code, out, err = proxy(
        url, tmp_path, "haproxy", "--upstream", "2026.11=127.0.0.1:8001",
        "--watch", "--runtime-api", address,
    )  # fmt: skip
    assert code == 2
    assert f"--runtime-api {address!r}" in err
    assert "unix:/" in err  # says what to give
    assert out == ""
    assert not (tmp_path / "m.map").exists()

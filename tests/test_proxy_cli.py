"""`cohortroute proxy ...` refuses what a configuration cannot safely hold, says so in one line
with exit 2, keeps secrets out of the configuration, and a --watch survives a proxy not up yet."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute._clock import ManualClock
from cohortroute.cli.main import run
from cohortroute.errors import ConfigurationError
from cohortroute.proxyconf import Decider, Pools, Table
from cohortroute.proxyconf.options import split_host_port, url_host
from cohortroute.proxyconf.watch import Watch, reload_command
from cohortroute.store import open_store
from tests.e2e.servers import bin_path, free_port


@pytest.fixture
def url(tmp_path: Path) -> str:
    made = f"sqlite:///{tmp_path}/routing.db"
    store = open_store(made + "?mode=rwc")
    store.register_versions(["2026.11", "2026.12"], "2026.11", actor="test")
    store.pin("acme", "2026.12")
    store.close()
    return made


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def proxy(url: str, tmp_path: Path, kind: str, *more: str) -> tuple[int, str, str]:
    return cli(
        "--store", url, "proxy", kind, "--domain", "shop.test", "--map", f"{tmp_path}/m.map",
        *more,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--upstream", "2026.11=127.0.0.1:1; evil"], "the port must be a number 1-65535"),
        (["--upstream", "2026.11=127.0.0.1:99999"], "the port must be a number 1-65535"),
        (["--upstream", "2026.11=127.0.0.1:0"], "the port must be a number 1-65535"),
        (["--upstream", "2026.11=evil host:80"], "give HOST:PORT"),
        (["--upstream", '2026.11=x">:1'], "give HOST:PORT"),
        (["--upstream", "2026.11=unix:/run/a b.sock"], "give unix:/absolute/path"),
        (["--upstream", "2026.11=unix:relative.sock"], "give unix:/absolute/path"),
        (["--upstream", "2026.11=[::1:80"], "give [IPv6]:PORT"),
        (["--upstream", "b3=127.0.0.1:1"], "the known versions are: 2026.11, 2026.12"),
        (["--upstream", "2026.11=127.0.0.1:1", "--upstream", "2026.1=127.0.0.1:2"], "'2026.1'"),
        (["--upstream", "2026.11=127.0.0.1:1", "--listen", "80; include /etc/passwd"], "--listen"),
        (["--upstream", "2026.11=127.0.0.1:1", "--listen", "99999"], "1-65535"),
    ],
)
@pytest.mark.parametrize("kind", ["nginx", "haproxy", "apache"])
def test_values_pasted_into_a_configuration_are_validated(
    url: str, tmp_path: Path, kind: str, options: list[str], words: str
) -> None:
    code, out, err = proxy(url, tmp_path, kind, *options)
    assert (code, out) == (2, "")
    assert err.startswith("cohortroute: error: ") and words in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.map").exists()


def test_a_version_name_is_matched_exactly(url: str) -> None:
    store = open_store(url)
    with pytest.raises(ConfigurationError, match=r"known versions are: 2026\.11, 2026\.12"):
        Decider(store, Pools.parse(["2026.11=127.0.0.1:1", "2026.12=127.0.0.1:2", "V1=a:1"]),
                domains=["shop.test"])  # fmt: skip
    store.close()


def test_good_addresses_are_written_as_given(url: str, tmp_path: Path) -> None:
    code, out, err = proxy(
        url, tmp_path, "nginx", "--upstream", "2026.11=[::1]:8001",
        "--upstream", "2026.12=unix:/run/shop-2026.12.sock", "--listen", "[::1]:8080",
    )  # fmt: skip
    assert code == 0, err
    assert "    server [::1]:8001;" in out
    assert "    server unix:/run/shop-2026.12.sock;" in out
    assert "    listen [::1]:8080;" in out


def test_a_map_in_a_missing_directory_is_a_usage_error_before_any_output(
    url: str, tmp_path: Path
) -> None:
    code, out, err = cli(
        "--store", url, "proxy", "nginx", "--domain", "shop.test",
        "--upstream", "2026.11=127.0.0.1:1", "--map", "/nonexistent/dir/m.conf",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        "cohortroute: error: --map /nonexistent/dir/m.conf: the directory /nonexistent/dir "
        "does not exist\n"
    )


def test_a_reload_command_that_cannot_run_is_a_usage_error(url: str, tmp_path: Path) -> None:
    code, out, err = proxy(
        url, tmp_path, "nginx", "--upstream", "2026.11=127.0.0.1:1", "--watch",
        "--reload-command", "nosuchcmd -s reload",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert "--reload-command 'nosuchcmd -s reload': 'nosuchcmd' is not an executable" in err


@pytest.mark.parametrize(
    ("fmt", "option", "value"),
    [("nginx", "--reload-command", "nginx -s reload"), ("haproxy", "--runtime-api", "unix:/x")],
)
def test_a_live_update_option_without_watch_is_a_usage_error(
    url: str, tmp_path: Path, fmt: str, option: str, value: str
) -> None:
    # Without --watch the map is written once: the option was silently ignored.
    code, out, err = proxy(url, tmp_path, fmt, "--upstream", "2026.11=127.0.0.1:1", option, value)
    assert (code, out) == (2, "")
    assert f"{option} tells the proxy about a changed map, which only --watch writes" in err


def test_a_reload_that_cannot_run_later_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notify = reload_command(["/nonexistent/nginx", "-s", "reload"])
    notify(Table("cohortroute_v1", {}, 1))
    assert "/nonexistent/nginx -s reload could not run" in caplog.text


def test_apache_prg_keeps_the_store_url_out_of_the_configuration(url: str, tmp_path: Path) -> None:
    code, out, err = proxy(url, tmp_path, "apache", "--upstream", "2026.11=127.0.0.1:1",
                           "--upstream", "2026.12=127.0.0.1:2", "--prg")  # fmt: skip
    assert code == 0, err
    assert url not in out and "routing.db" not in out
    url_file = tmp_path / "m.map.store"
    assert f"--store-file {url_file} " in out
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    assert url_file.read_text() == url + "\n"
    # The program Apache runs reads it: the pinned tenant gets its pool.
    answer = subprocess.run(
        [bin_path("cohortroute"), "proxy", "prg", "--store-file", str(url_file),
         "--domain", "shop.test", "--upstream", "2026.11=127.0.0.1:1",
         "--upstream", "2026.12=127.0.0.1:2"],
        input="acme.shop.test\nevil.org\n", capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items() if k != "COHORTROUTE_STORE"},
    )  # fmt: skip
    assert answer.stdout.splitlines() == ["cohortroute_2026_12", "cohortroute_bad_host"]


def test_a_failed_notify_is_retried_at_the_next_step(url: str, tmp_path: Path) -> None:
    store = open_store(url)
    decider = Decider(store, Pools.parse(["2026.11=127.0.0.1:1"]), domains=["shop.test"])
    calls: list[int] = []

    def notify(table: Table) -> None:
        calls.append(table.revision)
        if len(calls) == 1:
            raise ConnectionRefusedError("HAProxy is not up yet")

    watch = Watch(decider, lambda t: "x\n", str(tmp_path / "m.map"), notify=notify,
                  clock=ManualClock())  # fmt: skip
    assert watch.try_step() is False  # written, but HAProxy not told: said, not raised
    watch.try_step()  # nothing changed in the store: told now
    watch.try_step()
    assert len(calls) == 2
    decider.close()
    store.close()


def test_the_watch_waits_for_haproxys_socket_without_a_traceback(url: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [bin_path("cohortroute"), "--store", url, "proxy", "haproxy", "--domain", "shop.test",
         "--upstream", "2026.11=127.0.0.1:1", "--upstream", "2026.12=127.0.0.1:2",
         "--map", str(tmp_path / "m.map"),
         "--config", str(tmp_path / "f.cfg"), "--watch", "--interval", "0.1",
         "--runtime-api", f"unix:{tmp_path}/admin.sock"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        said = [process.stderr.readline(), process.stderr.readline()]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stderr is not None
    rest = process.stderr.read()
    process.stderr.close()
    assert f"HAProxy runtime API unix:{tmp_path}/admin.sock: No such file or directory" in said[0]
    assert said[1].endswith("(Ctrl-C stops)\n")
    assert "Traceback" not in rest and "HAProxy runtime API" not in rest  # said once
    assert process.returncode in (0, -15)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("[::1]:18096", ("::1", 18096)),
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        ("localhost:8090", ("localhost", 8090)),
    ],
)
def test_listen_addresses_parse(value: str, parsed: tuple[str, int]) -> None:
    assert split_host_port(value, "--listen") == parsed
    assert url_host(parsed[0]) == value.rsplit(":", 1)[0]


@pytest.fixture
def decide_v6(url: str) -> Iterator[tuple[int, str]]:
    port = free_port()
    process = subprocess.Popen(
        [bin_path("cohortroute"), "--store", url, "proxy", "decide", "--domain", "shop.test",
         "--upstream", "2026.11=127.0.0.1:1", "--upstream", "2026.12=127.0.0.1:2",
         "--listen", f"[::1]:{port}"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        yield port, process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_the_decision_endpoint_listens_on_ipv6(decide_v6: tuple[int, str]) -> None:
    port, said = decide_v6
    assert said == f"decision endpoint on http://[::1]:{port}/ (Ctrl-C stops)\n"
    request = urllib.request.Request(f"http://[::1]:{port}/", headers={"Host": "acme.shop.test"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["X-Cohortroute-Pool"] == "cohortroute_2026_12"

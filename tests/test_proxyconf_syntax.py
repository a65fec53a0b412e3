"""The generated nginx, HAProxy and Apache configurations pass the servers' own syntax checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute.proxyconf import Decider, Pools, Table, apache, haproxy, nginx
from cohortroute.proxyconf.options import ProxySetup
from cohortroute.store import open_store
from tests.e2e import proxies
from tests.e2e.servers import bin_path

POOLS = Pools.parse(
    ["2026.11=127.0.0.1:8001", "2026.12=127.0.0.1:8002", "2026.12=unix:/run/b.sock"]
)


def _written(tmp_path: Path, kind: str, prg: bool = False) -> tuple[Path, str]:
    tmp_path.chmod(0o755)
    store = open_store("memory://")
    store.register_versions(["2026.11", "2026.12"], "2026.11", actor="test")
    store.pin("acme", "2026.12")
    decider = Decider(store, POOLS, domains=["example.com", "shop.test"])
    map_path = tmp_path / f"{kind}.map"
    setup = ProxySetup(("example.com", "shop.test"), POOLS, str(map_path), "127.0.0.1:18080")
    module = {"nginx": nginx, "haproxy": haproxy, "apache": apache}[kind]
    table = Table.build(decider)
    map_path.write_text(module.map_file(table))
    if module is nginx:
        Path(nginx.sizes_path(str(map_path))).write_text(nginx.sizes_file(table))
    decider.close()
    if prg:
        text = apache.config(setup, [bin_path("cohortroute"), "proxy", "prg", "--domain", "x"])
    else:
        text = module.config(setup)
    fragment = tmp_path / f"{kind}-fragment.conf"
    fragment.write_text(text)
    return fragment, map_path.read_text()


@pytest.mark.skipif(not proxies.installed("nginx"), reason="Debian's nginx is not installed")
def test_nginx_accepts_the_generated_configuration(tmp_path: Path) -> None:
    fragment, written = _written(tmp_path, "nginx")
    assert "acme.example.com cohortroute_2026_12;" in written
    assert "default cohortroute_2026_11;" in written
    result = proxies.nginx_check(proxies.nginx_main(tmp_path, fragment))
    assert (result.returncode, result.stderr) == (0, "")  # no warning either


@pytest.mark.skipif(not proxies.installed("haproxy"), reason="Debian's haproxy is not installed")
def test_haproxy_accepts_the_generated_configuration(tmp_path: Path) -> None:
    fragment, written = _written(tmp_path, "haproxy")
    assert ".default cohortroute_2026_11" in written
    result = proxies.haproxy_check(proxies.haproxy_main(tmp_path, fragment))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.skipif(not proxies.installed("apache2"), reason="Debian's apache2 is not installed")
@pytest.mark.parametrize("prg", [False, True], ids=["txt-map", "prg-map"])
def test_apache_accepts_the_generated_configuration(tmp_path: Path, prg: bool) -> None:
    fragment, _written_map = _written(tmp_path, "apache", prg)
    result = proxies.apache_check(proxies.apache_main(tmp_path, fragment, 18080))
    assert result.returncode == 0, result.stdout + result.stderr

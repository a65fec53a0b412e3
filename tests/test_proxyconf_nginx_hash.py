"""nginx loads the generated map whatever tenants the store holds: a 63-character label (any
visitor can make a router register one) and 100,000 tenants, without an error or a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortroute.proxyconf import Decider, Pools, Table, nginx
from cohortroute.proxyconf.options import ProxySetup
from cohortroute.proxyconf.watch import Watch
from cohortroute.store import open_store
from tests.e2e import proxies

POOLS = Pools.parse(["v1=127.0.0.1:8001", "v2=127.0.0.1:8002"])
LONGEST = "x" * 63


def _table(hosts: dict[str, str]) -> Table:
    return Table("cohortroute_v1", hosts, 1)


def test_the_sizes_fit_the_longest_key_and_the_entry_count() -> None:
    assert nginx.hash_sizes(_table({"acme.shop.test": "cohortroute_v1"})) == (128, 2048)
    bucket, _ = nginx.hash_sizes(_table({f"{LONGEST}.shop.test": "cohortroute_v1"}))
    assert bucket == 256  # two 8 + 80-byte entries and a pointer: nginx's default 64 is short
    hosts = {f"t{i:06d}.shop.test": "cohortroute_v1" for i in range(100_000)}
    assert nginx.hash_sizes(_table(hosts)) == (128, 262_144)
    text = nginx.sizes_file(_table(hosts))
    assert "map_hash_bucket_size 128;\nmap_hash_max_size 262144;\n" in text


def test_the_fragment_includes_the_sizes_before_the_map() -> None:
    setup = ProxySetup(("shop.test",), POOLS, "/etc/nginx/cohortroute.map")
    text = nginx.config(setup)
    include = text.index("include /etc/nginx/cohortroute.map.sizes;")
    assert include < text.index("map $host $cohortroute_pool {")
    assert "sizes" not in nginx.config(setup, decide="127.0.0.1:8090")  # no map, no sizes


def _check(directory: Path, table: Table) -> tuple[int, str]:
    """``nginx -t`` on the fragment with the map and sizes files `cohortroute proxy nginx`
    writes for ``table``."""
    directory.chmod(0o755)
    map_path = directory / "cohortroute.map"
    map_path.write_text(nginx.map_file(table))
    Path(nginx.sizes_path(str(map_path))).write_text(nginx.sizes_file(table))
    fragment = directory / "fragment.conf"
    fragment.write_text(nginx.config(ProxySetup(("shop.test",), POOLS, str(map_path))))
    result = proxies.nginx_check(proxies.nginx_main(directory, fragment))
    return result.returncode, result.stderr


@pytest.mark.skipif(not proxies.installed("nginx"), reason="Debian's nginx is not installed")
def test_nginx_loads_a_map_with_a_63_character_label_the_watch_wrote(tmp_path: Path) -> None:
    store = open_store("memory://")
    store.register_versions(["v1", "v2"], "v1", actor="test")
    store.register_tenants([LONGEST, "acme"])
    decider = Decider(store, POOLS, domains=["shop.test"])
    map_path = str(tmp_path / "cohortroute.map")
    sizes = (nginx.sizes_path(map_path), nginx.sizes_file)
    watch = Watch(decider, nginx.map_file, map_path, also=[sizes])
    watch.step()
    decider.close()
    assert watch.table is not None
    assert f"{LONGEST}.shop.test cohortroute_v1;" in Path(map_path).read_text()
    assert "map_hash_bucket_size 256;" in Path(sizes[0]).read_text()
    assert _check(tmp_path, watch.table) == (0, "")


@pytest.mark.skipif(not proxies.installed("nginx"), reason="Debian's nginx is not installed")
def test_nginx_loads_a_map_of_100000_tenants(tmp_path: Path) -> None:
    hosts = {f"t{i:06d}.shop.test": "cohortroute_v2" for i in range(99_999)}
    hosts[f"{LONGEST}.shop.test"] = "cohortroute_v1"
    assert _check(tmp_path, _table(hosts)) == (0, "")

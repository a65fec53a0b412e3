"""``cohortroute admin`` on a port it cannot use: one error line and exit 2, like ``demo``."""

from __future__ import annotations

import pathlib
import socket

from cohortroute.store import open_store
from tests.cli_inproc import cli


def a_store(tmp_path: pathlib.Path) -> str:
    """A store that exists (the CLI never creates one)."""
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    store.revision()  # opened lazily: the first read creates the file
    store.close()
    return url


def test_admin_on_a_taken_port_says_so_in_one_line_and_exits_2(tmp_path: pathlib.Path) -> None:
    store = a_store(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = cli("admin", "--port", str(port), store=store)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"cohortroute: error: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in lines[0] and "try --port" in lines[0]


def test_admin_on_an_unknown_host_says_so(tmp_path: pathlib.Path) -> None:
    result = cli("admin", "--host", "no-such-host.invalid", "--port", "0", store=a_store(tmp_path))
    assert result.code == 2
    assert "cannot listen on no-such-host.invalid:0: unknown host" in result.err


def test_admin_on_a_store_that_does_not_exist_says_so_before_serving(
    tmp_path: pathlib.Path,
) -> None:
    result = cli("admin", "--port", "0", store=f"sqlite:///{tmp_path}/typo.db")
    assert result.code == 2
    assert "there is no cohortroute store" in result.err
    assert "cohortroute admin on" not in result.out
    assert not (tmp_path / "typo.db").exists()

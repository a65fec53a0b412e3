"""``cohortroute demo`` for real: a server process, HTTP requests, and the CLI in another process.

The seeding, page and command checks at the top run in-process; the rest start the demo on a free
port with a temporary SQLite store and always stop it (bounded waits, SIGTERM then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, open_store
from cohortroute.demo import NEW, QA_TENANT, SEED_TENANTS, STABLE, build_demo, cli_command, seed
from cohortroute.demo.program import console_program

from ..cli_inproc import cli as cli_inproc
from .servers import bin_path, free_port, get

STARTUP_TIMEOUT = 20.0


# --- seeding (in-process) ------------------------------------------------------------------------


def test_seeding_shows_both_versions_and_every_reason() -> None:
    store = open_store("memory://")
    assert seed(store) is True
    router = CohortRouter(
        {STABLE: _app, NEW: _app}, default=STABLE, domains=["localhost"], store=store
    )
    decisions = {name: router.explain(name) for name in SEED_TENANTS}
    assert {d.version for d in decisions.values()} == {STABLE, NEW}
    assert {d.reason.value for d in decisions.values()} == {"pin", "tag", "rollout", "default"}
    assert decisions[QA_TENANT].reason.value == "pin" and decisions[QA_TENANT].version == NEW
    rollout = store.policy().rollout
    assert rollout is not None and rollout.percent <= 2500  # a small rollout


def test_seeding_never_touches_a_store_with_history() -> None:
    store = open_store("memory://")
    store.register_versions(["1.0"], "1.0")
    revision = store.revision()
    assert seed(store) is False
    assert store.revision() == revision and store.policy().versions == {"1.0"}


def test_the_demo_never_imports_the_cli() -> None:
    code = (
        "import sys, cohortroute.demo; "
        "print(sorted(m for m in sys.modules if m.startswith('cohortroute.cli')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_the_demo_pages_give_the_hints_the_cli_gives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    store = open_store(url)
    seed(store)
    router, _site = build_demo(store, 8000, cli_command(url, "cohortroute"))
    try:
        for tenant in ("acme", "qa", "initech", "umbrella"):
            response = Client(router).get("/", headers={"Host": f"{tenant}.localhost:8000"})
            page = response.get_data(as_text=True)
            explained = json.loads(cli_inproc("explain", tenant, "--json", store=url).out)
            shown = [line[4:] for line in page.splitlines() if line.startswith("  - ")]
            assert shown == explained["hints"] and shown
    finally:
        router.close()
        store.close()


def test_the_commands_the_demo_prints_mask_credentials() -> None:
    command = cli_command("crdemo://user:hunter2@[::1]:6379/0?password=hunter3")
    assert "hunter" not in command and "[::1]:6379" in command
    assert (
        cli_command("sqlite:///demo.db", "cohortroute")
        == f"cohortroute --store sqlite:///{Path.cwd()}/demo.db"
    )


def test_the_demo_names_the_cli_so_a_shell_without_the_venv_finds_it(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).with_name("cohortroute"))
    assert console_program(sys.executable, lambda name: None) == venv_bin
    assert console_program(sys.executable, lambda name: venv_bin) == "cohortroute"
    elsewhere = str(tmp_path / "cohortroute")
    assert console_program(sys.executable, lambda name: elsewhere) == venv_bin
    source_tree = str(tmp_path / "python3")  # no console script beside this interpreter
    assert console_program(source_tree, lambda name: None) == f"{source_tree} -m cohortroute"


@pytest.mark.e2e
def test_the_commands_the_demo_prints_run_in_a_shell_without_the_venv(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    port = free_port()
    bare = "/usr/bin:/bin"  # what the README leaves: .venv/bin is not on PATH
    with demo(tmp_path, url, port, path=bare):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "Listening on" not in (printed := (tmp_path / f"demo-{port}.out").read_text()):
            assert time.monotonic() < deadline, printed
            time.sleep(0.05)
    status = next(line.strip() for line in printed.splitlines() if line.endswith(" status"))
    assert status.startswith(str(Path(sys.executable).with_name("cohortroute")))
    ran = subprocess.run(
        status, shell=True, env={"PATH": bare}, cwd="/", capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert "versions:" in ran.stdout


# --- the server --------------------------------------------------------------------------------


@contextlib.contextmanager
def demo(
    tmp_path: Path, store_url: str, port: int, path: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cohortroute demo`` until it answers on ``port``; always stop it afterwards.

    ``path`` replaces ``$PATH`` (a shell where the virtualenv is not activated).
    """
    environment = {k: v for k, v in os.environ.items() if k != "COHORTROUTE_STORE"}
    if path is not None:
        environment["PATH"] = path
    out = (tmp_path / f"demo-{port}.out").open("wb")
    command = [sys.executable, "-m", "cohortroute", "demo", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--store", store_url],
        cwd=tmp_path,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"demo exited early ({process.returncode}):\n{output(out)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"demo did not listen in {STARTUP_TIMEOUT}s") from None
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        out.close()


def output(handle: object) -> str:
    """What the demo printed so far (stdout and stderr)."""
    name = getattr(handle, "name", "")
    return Path(name).read_text() if name else ""


def page(port: int, tenant: str | None, *, html: bool = False) -> str:
    """The demo page for ``tenant`` (the index for None), as curl (text) or a browser sees it."""
    host = f"{tenant}.localhost:{port}" if tenant else f"localhost:{port}"
    if not html:
        status, body = get(port, host)
        assert status == 200, body
        return body
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", headers={"Host": host, "Accept": "text/html"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["X-Cohortroute-Tenant"] == (tenant or "")
        return str(response.read().decode())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator runs it in another terminal."""
    return subprocess.run(
        [bin_path("cohortroute"), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.e2e
def test_demo_serves_both_versions_and_follows_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    port = free_port()
    with demo(tmp_path, url, port) as process:
        index = page(port, None)
        assert f"index served by {STABLE} (stable)" in index
        for tenant in SEED_TENANTS:
            assert tenant in index

        qa = page(port, QA_TENANT)
        assert f"version: {NEW}" in qa and "reason:  pin" in qa
        umbrella = page(port, "umbrella")
        assert f"version: {STABLE}" in umbrella and "reason:  default" in umbrella

        html = page(port, "umbrella", html=True)
        assert f"<h1>{STABLE} (stable)</h1>" in html and "umbrella" in html
        assert f"<h1>{NEW} (new)</h1>" in page(port, QA_TENANT, html=True)

        # Concurrent requests are served side by side by the threaded server.
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(pool.map(lambda t: page(port, t), list(SEED_TENANTS) * 3))
        assert all("version: 20" in body for body in bodies)

        result = cli("--store", url, "--actor", "e2e", "pin", "umbrella", NEW)
        assert result.returncode == 0, result.stderr
        started = time.monotonic()
        while f"version: {NEW}" not in (body := page(port, "umbrella")):
            assert time.monotonic() - started < 2.0, f"the pin did not show within 2 s:\n{body}"
            time.sleep(0.05)
        assert "reason:  pin (pinned to 2026.12)" in body
        assert process.poll() is None
    assert process.returncode == 0  # SIGTERM stops it like Ctrl-C
    printed = (tmp_path / f"demo-{port}.out").read_text()
    assert f"http://acme.localhost:{port}/" in printed
    assert f"curl -H 'Host: acme.localhost:{port}' http://127.0.0.1:{port}/" in printed
    assert f"cohortroute --store {url} pin globex {NEW}" in printed
    assert "a fresh store, seeded" in printed and "cohortroute demo: stopped." in printed
    assert "Traceback" not in printed

    # A second run keeps the changed store as it is.
    with demo(tmp_path, url, port):
        assert f"version: {NEW}" in page(port, "umbrella")
    assert "an existing store" in (tmp_path / f"demo-{port}.out").read_text()


@pytest.mark.e2e
def test_demo_on_a_taken_port_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cohortroute", "demo", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cohortroute-demo.db").exists()  # failed before touching a store


@pytest.mark.e2e
def test_demo_on_an_unknown_host_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cohortroute", "demo", "--host", "no-such-host.invalid"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown host" in result.stderr and "Traceback" not in result.stderr


def _app(environ: object, start_response: object) -> list[bytes]:
    return [b""]

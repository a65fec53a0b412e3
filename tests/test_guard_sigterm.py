"""SIGTERM (what systemd sends to stop a service) stops `cohortroute guard` and `cohortroute
rollout run` like Ctrl-C: the guard's lease is given up, so another host's guard takes over at
once instead of after the lease runs out. Real processes, and no sleeps: each test waits for a
line the process prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cohortroute.guard.lease import current
from cohortroute.store import open_store

from .cli_inproc import cli

ROOT = Path(__file__).resolve().parent.parent


def _start(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "cohortroute", "--store", url, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _terminate_after_line(process: subprocess.Popen[str], expected: str) -> tuple[str, str]:
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert expected in line, line
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        return line + out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/g.db"
    store = open_store(url + "?mode=rwc")
    store.register_versions(["v1", "v2"], default="v1")
    store.register_tenants([f"t{i}" for i in range(20)])
    return url


def test_sigterm_stops_the_guard_and_gives_its_lease_up(tmp_path: Path) -> None:
    url = _store(tmp_path)
    process = _start(url, "guard", "--holder", "host-a", "--interval", "60")
    _, err = _terminate_after_line(process, "no rollout to guard")
    assert process.returncode == 130, err
    assert current(open_store(url)) is None


def test_sigterm_stops_rollout_run_and_gives_the_guards_lease_up(tmp_path: Path) -> None:
    url = _store(tmp_path)
    start = ("rollout", "start", "v2", "--plan", "10,50,100", "--every", "2m", "--auto")
    assert cli(*start, store=url).code == 0
    process = _start(url, "rollout", "run", "--interval", "60")
    _, err = _terminate_after_line(process, "guard: step held")
    assert process.returncode == 130, err
    assert current(open_store(url)) is None

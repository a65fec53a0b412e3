"""examples/two_builds/run.sh stops the two builds it starts when the router stops.

The builds run as gunicorn daemons; the script ended with ``exec gunicorn`` for the router, so
Ctrl-C stopped the router only and both builds stayed up on their sockets. A second run then
started two more on the same sockets. Here the programs the script runs are stand-ins (a build
"daemon" is a ``sleep`` that writes its pid file, the router exits at once), so the test needs
no virtualenv and no network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "two_builds" / "run.sh"
RELEASES = ("2026.11", "2026.12")

FAKE_BUILD = """#!/bin/bash
while [ $# -gt 0 ]; do
  if [ "$1" = --pid ]; then pidfile="$2"; fi
  shift
done
sleep 600 </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile"
echo $! >> "$(dirname "$pidfile")/started"
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie nobody reaped yet is stopped


def _wait_gone(pids: list[int], deadline: float) -> list[int]:
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)  # polling with a deadline, not waiting for a fixed time


def _run(run_dir: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUN_DIR": str(run_dir), "HOME": str(run_dir)}
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_builds_stop_with_the_router(tmp_path: Path) -> None:
    run_dir, bin_dir = tmp_path / "run", tmp_path / "bin"
    bin_dir.mkdir()
    router = bin_dir / "gunicorn"
    router.write_text("#!/bin/sh\nexit 0\n")  # the router: stops at once (as after Ctrl-C)
    router.chmod(0o755)
    for release in RELEASES:
        build = run_dir / f"venv-{release}" / "bin" / "gunicorn"
        build.parent.mkdir(parents=True)
        build.write_text(FAKE_BUILD)
        build.chmod(0o755)
    started: list[int] = []
    try:
        first = _run(run_dir, bin_dir)
        assert first.returncode == 0, first.stdout + first.stderr
        started = [int(line) for line in (run_dir / "started").read_text().split()]
        assert len(started) == 2
        assert _wait_gone(started, time.monotonic() + 20) == []
        assert not list(run_dir.glob("shop-*.pid"))
    finally:
        for pid in started:
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)

"""A hung assignment backend (one with a ``timeout``) never holds up the process's exit.

``cohortroute explain acme --assign mod:backends`` with a backend that hangs printed its answer
at once (the backend is skipped after its timeout) and then did not exit until the backend
returned -- for ever, if it never does: the calls ran on a ThreadPoolExecutor, whose threads the
interpreter joins at exit. The same held up the exit of any process with a router using such a
backend. The calls now run on daemon threads.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cohortroute.assign._calls import DaemonCalls
from cohortroute.store import open_store

ROOT = Path(__file__).resolve().parent.parent

HUNG = """
import threading
from dataclasses import dataclass

NEVER = threading.Event()


@dataclass(frozen=True)
class Hung:
    name: str = "hung"
    ttl: float | None = None
    timeout: float | None = 0.05

    def assign(self, query, /):
        NEVER.wait(300)
        return None


backends = [Hung()]
"""


def test_the_command_exits_while_the_backend_still_hangs(tmp_path: Path) -> None:
    (tmp_path / "hung_backend.py").write_text(HUNG)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["v1", "v2"], "v1")
    store.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    command = ["--store", url, "explain", "acme", "--assign", "hung_backend:backends"]
    done = subprocess.run(
        [sys.executable, "-m", "cohortroute", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,  # generous for a loaded machine; the hung backend waits 300 s
    )
    assert done.returncode == 0, done.stderr
    assert "acme -> v1" in done.stdout
    assert "no answer within its timeout" in done.stderr


def _calls_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("trial-calls")]


def _until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.01)  # a poll with a deadline, not a wait for a guess
    return True


def test_the_threads_are_daemons_answer_and_end_when_closed_or_dropped() -> None:
    calls = DaemonCalls(2, "trial-calls")
    assert calls.submit(lambda x: x * 2, 21).result(10) == 42
    with pytest.raises(ZeroDivisionError):
        calls.submit(lambda: 1 / 0).result(10)
    assert _calls_threads() and all(t.daemon for t in _calls_threads())
    calls.close()
    assert _until(lambda: not _calls_threads())

    dropped = DaemonCalls(2, "trial-calls")
    dropped.submit(lambda: None).result(10)
    assert _calls_threads()
    del dropped  # never closed: its idle threads still end
    gc.collect()
    assert _until(lambda: not _calls_threads())

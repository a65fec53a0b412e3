"""Start real servers on 127.0.0.1 for end-to-end tests, with bounded waits and sure cleanup."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, host: str, path: str = "/", timeout: float = 5) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:port with the given Host header."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@contextlib.contextmanager
def serve(
    command: Sequence[str],
    port: int,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    unix_socket: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command until it answers on ``port`` (or ``unix_socket``); always stop it
    afterwards."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    process = subprocess.Popen(
        list(command), cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"server exited early ({process.returncode}):\n{output}")
            try:
                if unix_socket is not None:
                    with socket.socket(socket.AF_UNIX) as unix:
                        unix.settimeout(0.2)
                        unix.connect(unix_socket)
                else:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not listen on {port} in {timeout}s") from None
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def bin_path(name: str) -> str:
    """The console script installed next to this Python (gunicorn, uvicorn, cohortroute)."""
    return str(Path(sys.executable).with_name(name))

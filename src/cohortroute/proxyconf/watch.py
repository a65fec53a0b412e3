"""Keeping a proxy's map current: rewrite the file atomically, then tell the proxy.

Every ``interval`` the store's revision is read; when it moved (a pin, a rollout step, a
finalize), and at least every ``rebuild_every`` seconds regardless (a timed rollout plan moves
on without a write), the table is rebuilt with the router's decision code. A changed table is
written to a temporary file and renamed over the map, so a proxy never reads half a file, and
then the proxy is told its way: nginx by a graceful reload, HAProxy by ``set map``/``add map``/
``del map`` on its runtime API (no reload), Apache by nothing (it re-reads a ``txt:`` map whose
modification time changed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .._clock import SYSTEM, Clock
from ..errors import ConfigurationError
from .decider import Decider
from .table import Table

log = logging.getLogger(__name__)

Notify = Callable[[Table], object]


def write_atomically(path: str, text: str) -> bool:
    """Replace ``path`` with ``text`` in one rename; False when it already held exactly that."""
    target = Path(path)
    with contextlib.suppress(OSError):
        if target.read_text() == text:
            return False
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def reload_command(command: Sequence[str]) -> Notify:
    """Run ``command`` (e.g. ``nginx -s reload``) after each change; a failure is logged."""

    def notify(table: Table) -> None:
        result = subprocess.run(list(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log.error("%s failed (%d): %s", " ".join(command), result.returncode, result.stderr)

    return notify


class HAProxyRuntime:
    """HAProxy's runtime API (``stats socket ... level admin``): the live map, changed in place.

    :param address: ``unix:/run/haproxy/admin.sock`` or ``host:port``.
    :param map_path: the map file as the configuration names it (the map's identity there).
    """

    def __init__(self, address: str, map_path: str, timeout: float = 5.0) -> None:
        self.address = address
        self.map_path = map_path
        self.timeout = timeout

    def command(self, text: str) -> str:
        """Send one line of commands (``;``-separated) and return the answer."""
        if self.address.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = self.address[5:]
        else:
            host, _, port = self.address.rpartition(":")
            if not port.isdigit():
                raise ConfigurationError(
                    f"--runtime-api {self.address!r}: give unix:/path/to/admin.sock or host:port"
                )
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        with sock:
            sock.settimeout(self.timeout)
            sock.connect(target)
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def live(self) -> dict[str, str]:
        """The map as HAProxy holds it now."""
        entries = {}
        for line in self.command(f"show map {self.map_path}").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith("0x"):
                entries[parts[1]] = parts[2]
        return entries

    def apply(self, table: Table) -> int:
        """Make the live map equal to ``table``; returns the number of entries changed."""
        live = self.live()
        wanted = dict(table.entries())
        commands = []
        for key, pool in wanted.items():
            if key not in live:
                commands.append(f"add map {self.map_path} {key} {pool}")
            elif live[key] != pool:
                commands.append(f"set map {self.map_path} {key} {pool}")
        commands += [f"del map {self.map_path} {key}" for key in live if key not in wanted]
        for start in range(0, len(commands), 100):
            answer = self.command(";".join(commands[start : start + 100]))
            if answer.strip():
                log.warning("haproxy runtime API answered: %s", answer.strip()[:500])
        return len(commands)


class Watch:
    """Rewrites ``map_path`` with ``render(table)`` whenever decisions change; calls ``notify``."""

    def __init__(
        self,
        decider: Decider,
        render: Callable[[Table], str],
        map_path: str,
        *,
        notify: Notify | None = None,
        interval: float = 1.0,
        rebuild_every: float = 30.0,
        clock: Clock = SYSTEM,
    ) -> None:
        if interval <= 0:
            raise ConfigurationError("--interval must be seconds > 0")
        self.decider = decider
        self.render = render
        self.map_path = map_path
        self.notify = notify
        self.interval = interval
        self.rebuild_every = rebuild_every
        self.clock = clock
        self._revision: int | None = None
        self._built_at = float("-inf")
        self.table: Table | None = None

    def step(self) -> bool:
        """Rebuild if due; write and notify if the map changed. True when it did."""
        now = self.clock.monotonic()
        revision = self.decider.store.revision()
        if revision == self._revision and now - self._built_at < self.rebuild_every:
            return False
        table = Table.build(self.decider)
        self._revision, self._built_at = revision, now
        changed = write_atomically(self.map_path, self.render(table))
        first = self.table is None
        self.table = table
        if (changed or first) and self.notify is not None:
            self.notify(table)
        if changed:
            log.info(
                "map %s: %d hosts (store revision %d)", self.map_path, len(table.hosts), revision
            )
        return changed

    def run(self, stop: threading.Event) -> None:
        """Step every ``interval`` until ``stop`` is set; a failing step is logged and retried."""
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("updating the proxy map %s failed; retrying", self.map_path)
            stop.wait(self.interval)

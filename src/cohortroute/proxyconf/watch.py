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
from ..errors import CohortRouteError, ConfigurationError
from .decider import Decider
from .table import Table

log = logging.getLogger(__name__)

Notify = Callable[[Table], object]


def write_atomically(path: str, text: str, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``text`` in one rename; False when it already held exactly that.

    ``mode`` is the file's permissions (0o600 for a file holding a secret)."""
    target = Path(path)
    with contextlib.suppress(OSError):
        if target.read_text() == text and target.stat().st_mode & 0o777 == mode:
            return False
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def reload_command(command: Sequence[str]) -> Notify:
    """Run ``command`` (e.g. ``nginx -s reload``) after each change; a failure is logged."""

    def notify(table: Table) -> None:
        try:
            result = subprocess.run(list(command), capture_output=True, text=True, check=False)
        except OSError as exc:  # not found, not executable: said, and tried at the next change
            log.error("%s could not run: %s", " ".join(command), exc)
            return
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
            try:
                sock.connect(target)
            except OSError as exc:  # not up yet, or the wrong address: the watch retries
                reason = exc.strerror or str(exc)
                raise ConnectionError(f"HAProxy runtime API {self.address}: {reason}") from None
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
    """Rewrites ``map_path`` with ``render(table)`` whenever decisions change; calls ``notify``.

    ``also`` names more files rendered from the same table (nginx's hash sizes), written first.
    """

    def __init__(
        self,
        decider: Decider,
        render: Callable[[Table], str],
        map_path: str,
        *,
        notify: Notify | None = None,
        also: Sequence[tuple[str, Callable[[Table], str]]] = (),
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
        self.also = tuple(also)
        self.interval = interval
        self.rebuild_every = rebuild_every
        self.clock = clock
        self._revision: int | None = None
        self._built_at = float("-inf")
        self._unnotified = False  # the last notify failed: try it again at the next step
        self._failing: str | None = None  # the last step's error, while they fail
        self.table: Table | None = None

    def step(self) -> bool:
        """Rebuild if due; write and notify if the map changed. True when it did."""
        now = self.clock.monotonic()
        revision = self.decider.store.revision()
        if revision == self._revision and now - self._built_at < self.rebuild_every:
            if self._unnotified and self.table is not None:
                self._notify(self.table)
            return False
        table = Table.build(self.decider)
        self._revision, self._built_at = revision, now
        changed = False
        for path, render in self.also:  # what the map needs (nginx's hash sizes) goes first
            changed = write_atomically(path, render(table)) or changed
        changed = write_atomically(self.map_path, self.render(table)) or changed
        first = self.table is None
        self.table = table
        if changed or first or self._unnotified:
            self._notify(table)
        if changed:
            log.info(
                "map %s: %d hosts (store revision %d)", self.map_path, len(table.hosts), revision
            )
        return changed

    def _notify(self, table: Table) -> None:
        """Tell the proxy; when that fails (HAProxy's socket not up yet) the next step retries."""
        if self.notify is None:
            return
        self._unnotified = True
        self.notify(table)
        self._unnotified = False

    def run(self, stop: threading.Event) -> None:
        """Step every ``interval`` until ``stop`` is set; a failing step is logged and retried."""
        while not stop.is_set():
            self.try_step()
            stop.wait(self.interval)

    def try_step(self) -> bool:
        """:meth:`step`, with a failure logged (one line for the expected ones) instead of
        raised: a proxy not up yet or a store briefly away must not end a watch."""
        try:
            changed = self.step()
        except (OSError, CohortRouteError) as exc:
            message = str(exc)
            if message != self._failing:  # said once, not every interval
                log.error("updating the proxy map %s failed, retrying: %s", self.map_path, exc)
            self._failing = message
        except Exception as exc:
            log.exception("updating the proxy map %s failed; retrying", self.map_path)
            self._failing = str(exc)
        else:
            if self._failing is not None:
                log.warning("the proxy map %s is up to date again", self.map_path)
            self._failing = None
            return changed
        return False

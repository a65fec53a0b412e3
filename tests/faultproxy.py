"""A small TCP proxy owned by a test, to cut, slow and restore the path to a real store.

Loopback only: it listens on 127.0.0.1 and forwards to one loopback upstream. ``cut()`` closes
every open connection and refuses new ones (by closing them at once), ``slow(seconds)`` delays
every forwarded chunk, ``restore()`` returns to normal (and lets delayed chunks through now).
``close()`` stops everything; use it as a context manager so no thread or socket outlives the
test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, with faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        if upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback")
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self._cut = False
        self._delay = 0.0
        self._hurry = threading.Event()  # set: delayed chunks go through at once
        self._hurry.set()
        self._closed = False
        self.connections = 0
        accept = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        accept.start()
        self._threads.append(accept)

    # --- faults --------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)

    def slow(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds`` (until :meth:`restore`)."""
        self._delay = seconds
        self._hurry.clear()

    def restore(self) -> None:
        """Forward normally again."""
        self._delay = 0.0
        self._hurry.set()
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop the proxy; joins its threads."""
        self._closed = True
        self._hurry.set()
        self.cut()
        _close(self._listener)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- machinery --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut or self._closed
            if refused:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=2)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            thread = threading.Thread(
                target=self._pump, args=(client, upstream), name="faultproxy-pump", daemon=True
            )
            thread.start()
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    delay = self._delay
                    if delay:
                        self._hurry.wait(delay)
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(a)
            _close(b)
            with self._lock:
                self._pairs = [p for p in self._pairs if p != (a, b)]


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

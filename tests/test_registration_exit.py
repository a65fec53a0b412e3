"""What a router process that ends abruptly loses from the registry, tested with a real process.

The child builds a router on a SQLite file, serves the tenants the test names on its stdin (each
once) and says so. The bound promised: a tenant is written at most ``REGISTER_DELAY`` (1 s) after
it was first served, with no further request; so SIGKILL loses only what the process served in
its last second, and SIGTERM (which the router handles when nobody else does) loses nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortroute.router import REGISTER_DELAY
from cohortroute.store import Store, open_store

from .test_faults import poll

SLACK = 0.5  # a loaded 2-CPU machine; the write itself takes milliseconds

CHILD = """
import sys
from werkzeug.test import Client
from cohortroute import CohortRouter

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

router = CohortRouter({"v1": app}, domains=["example.com"], store=sys.argv[1])
client = Client(router)
print("ready", flush=True)
for line in sys.stdin:
    for name in line.split():
        client.get("/", headers={"Host": name + ".example.com"})
    print("served", flush=True)
"""


class Child:
    """The router process, driven line by line."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read() == "ready"

    def read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def serve(self, *tenants: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(tenants) + "\n")
        self.process.stdin.flush()
        assert self.read() == "served"

    def end(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(10)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()
        return code


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path}/state.db"
    opened = open_store(url)
    opened.register_versions(["v1"], "v1", actor="test")
    yield url, opened
    opened.close()


def registered(store: Store, *tenants: str) -> bool:
    return all(store.tenant(name).registered for name in tenants)


def test_sigkill_loses_at_most_the_last_second(store: tuple[str, Store]) -> None:
    url, opened = store
    child = Child(url)
    child.serve("early1", "early2", "early3")
    waited = poll(lambda: registered(opened, "early1", "early2", "early3"), 5.0)
    assert waited is not None, "tenants served once were never registered"
    assert waited <= REGISTER_DELAY + SLACK, f"registered {waited:.2f} s after being served"
    child.serve("late1")
    assert child.end(signal.SIGKILL) == -signal.SIGKILL
    assert registered(opened, "early1", "early2", "early3")  # late1 may be lost: its last second


def test_sigterm_writes_what_was_queued(store: tuple[str, Store]) -> None:
    url, opened = store
    child = Child(url)
    child.serve("last1", "last2")
    assert child.end(signal.SIGTERM) == -signal.SIGTERM  # it still ends the way SIGTERM does
    assert registered(opened, "last1", "last2")

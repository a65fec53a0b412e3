"""The CLI commands that read or write signals close the signal sink they opened.

In-process callers of ``cohortroute.cli.run`` (tests, cron wrappers, ``rollout run``) would
otherwise leak one database connection (or Redis pool) per ``guard``, ``report`` or ``ticket``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cohortroute.signals
from cohortroute.signals.model import SignalSink
from cohortroute.store import open_store

from .cli_inproc import cli, isolate, sqlite_url


class Spy:
    """Records every sink ``open_sink`` opens and whether it was closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[SignalSink] = []
        self.closed: list[SignalSink] = []
        real = cohortroute.signals.open_sink

        def open_sink(store: Any, **options: Any) -> SignalSink:
            sink = real(store, **options)
            close = sink.close

            def closing() -> None:
                self.closed.append(sink)
                close()

            monkeypatch.setattr(sink, "close", closing)
            self.opened.append(sink)
            return sink

        monkeypatch.setattr(cohortroute.signals, "open_sink", open_sink)


@pytest.mark.parametrize(
    "args",
    [("guard", "--once"), ("report", "--json"), ("ticket", "acme", "it is broken")],
    ids=["guard", "report", "ticket"],
)
def test_a_command_closes_the_signal_sink_it_opened(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch)
    url = sqlite_url(tmp_path)
    store = open_store(url)
    store.register_versions(["v1", "v2"], default="v1")
    store.register_tenants(["acme"])
    store.close()
    spy = Spy(monkeypatch)
    result = cli(*args, store=url)
    assert result.code == 0, result.err
    assert spy.opened, "the command opened no sink"
    assert spy.closed == spy.opened

"""Ctrl-C during ``rollout run`` / ``rollback`` / ``finalize`` says what the command waits for.

The runner lets the tenants it is moving finish their current work before it exits (stopping a
step halfway would leave their data half-moved), which is right -- but it did so in silence: a
long step made Ctrl-C look ignored, with no word on which tenants it waited for or how to stop
now. The interrupt now names them, and says how to stop at once and what that leaves behind.
"""

from __future__ import annotations

import logging
import threading

import pytest

from cohortroute.rollout.batch import run_batch
from cohortroute.rollout.results import TenantResult


def test_an_interrupt_names_the_tenants_still_being_moved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def move(name: str) -> TenantResult:
        if name == "slow":
            assert release.wait(10)
        return TenantResult(name, "moved")

    def progress(result: TenantResult) -> None:
        release.set()  # the slow tenant finishes while the batch shuts down
        raise KeyboardInterrupt  # what Ctrl-C raises in the calling thread

    caplog.set_level(logging.WARNING, logger="cohortroute")
    with pytest.raises(KeyboardInterrupt):
        run_batch(
            "run",
            ["fast", "slow", "never"],
            move,
            concurrency=2,
            max_failures=None,
            progress=progress,
            halt=lambda reason: None,
        )
    said = [r.getMessage() for r in caplog.records if "interrupted" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert "1 tenant(s) in progress finish (slow)" in said[0]
    assert "SIGKILL" in said[0] and "never" not in said[0]


def test_an_interrupt_with_nobody_running_says_nothing_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def progress(result: TenantResult) -> None:
        raise KeyboardInterrupt

    caplog.set_level(logging.WARNING, logger="cohortroute")
    with pytest.raises(KeyboardInterrupt):
        run_batch(
            "run",
            ["only"],
            lambda name: TenantResult(name, "moved"),
            concurrency=1,
            max_failures=None,
            progress=progress,
            halt=lambda reason: None,
        )
    assert "interrupted" not in caplog.text

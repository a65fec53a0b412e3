"""When the runner itself fails mid-batch (the store went away), it says what it leaves behind.

``rollout run`` with PostgreSQL cut off halfway printed only the store's error: nothing on the
tenants it had already moved, nor on the ones it was moving, which stay in maintenance (503)
until a later run resumes them. The batch now names those and says what to do before the error
is raised.
"""

from __future__ import annotations

import logging
import threading

import pytest

from cohortroute.errors import StoreUnavailableError
from cohortroute.rollout.batch import run_batch
from cohortroute.rollout.results import TenantResult


def test_a_crash_names_the_tenants_it_was_moving(caplog: pytest.LogCaptureFixture) -> None:
    first_done = threading.Event()

    def move(name: str) -> TenantResult:
        if name == "lost":
            assert first_done.wait(10)  # crash only once "ok" has been moved
            raise StoreUnavailableError("the store went away")
        first_done.set()
        return TenantResult(name, "moved")

    caplog.set_level(logging.WARNING, logger="cohortroute")
    with pytest.raises(StoreUnavailableError):
        run_batch(
            "run",
            ["ok", "lost"],
            move,
            concurrency=2,
            max_failures=None,
            progress=None,
            halt=lambda reason: None,
        )
    said = [r.getMessage() for r in caplog.records if "stopped on an error" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert "after moving 1 tenant(s)" in said[0]
    assert "it was moving lost," in said[0]
    assert "run it again" in said[0]

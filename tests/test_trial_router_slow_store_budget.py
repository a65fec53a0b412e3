"""A request waits at most ``lookup_timeout`` for a slow remote store in all, as the README says:
one that both confirms the revision (its refresh interval is up) and misses the decision cache
waited ``lookup_timeout`` for each, twice the promise, under WSGI (gunicorn's workers)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter

from .apps import wsgi_version
from .test_state_view import FlakyStore

TIMEOUT = 2.0  # seconds: the store never answers within it (its gate is closed); long enough
# that twice it (the bug) and once it plus a loaded machine's scheduling delays stay apart


@pytest.fixture
def store() -> Iterator[FlakyStore]:
    flaky = FlakyStore()
    yield flaky
    flaky.gate.set()  # never leave a look-up thread waiting


def test_a_refresh_and_a_miss_share_one_lookup_timeout(store: FlakyStore) -> None:
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        refresh_interval=0,  # every request confirms the revision
        lookup_timeout=TIMEOUT,
    )
    client = Client(router)
    assert client.get("/", headers={"Host": "warm.example.com"}).status_code == 200
    store.gate.clear()  # the store stops answering
    began = time.monotonic()
    response = client.get("/", headers={"Host": "newcomer.example.com"})
    took = time.monotonic() - began
    assert response.status_code == 200  # the default, while the store is slow
    # Twice TIMEOUT before; TIMEOUT and the request's own work after (a 1 s margin for CI).
    store.gate.set()
    router.close()
    assert took < 1.5 * TIMEOUT, f"waited {took:.2f} s for the store (lookup_timeout {TIMEOUT})"

"""A router's memory is bounded whatever the Host: measured with tracemalloc, in bytes.

Each test sends unique Hosts of the longest valid length (or garbage) through a WSGI router
with a rollout running and tenant registration on (the most a cached host can cost) and holds
the growth to the bound the README's "Memory per worker" states.
"""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.router._dispatch import ENTRY_BYTES, MAX_REJECTED
from cohortroute.tenancy import MAX_HOST_LENGTH

#: What the router's view of the store keeps per tenant read (records, last-known records and
#: the registrar's known set), bounded by their own caches' sizes (100,000 tenants).
RECORD_BYTES = 600
RECORDS_KEPT = 100_000
DOMAIN = ".".join(["b" * 63, "c" * 63, "d" * 61])  # a 189-character domain: 253 with a tenant
HOSTS = 50_000


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def longest_valid_host(i: int) -> str:
    """A unique valid Host of the maximal length: 63-character tenant, trailing dot, port."""
    host = f"{i:063d}.{DOMAIN}.:65535"
    assert len(host) == MAX_HOST_LENGTH
    return host


@pytest.fixture
def router() -> Iterator[CohortRouter]:
    made = CohortRouter(
        {"v1": app, "v2": app}, domains=[DOMAIN], store="memory://", clock=ManualClock()
    )
    made.store.start_rollout("v2", 50)
    for i in range(100):  # warm: the first requests allocate once-only structures
        send(made, f"warm{i}.{DOMAIN}")
    yield made
    made.close()


def send(router: CohortRouter, host: str) -> None:
    environ = {"HTTP_HOST": host, "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/"}
    router(environ, start_response)


def growth(router: CohortRouter, hosts: Callable[[int], str], count: int) -> int:
    """Bytes still allocated after ``count`` requests for ``hosts(0..count-1)``, each Host a
    new string as a server makes it."""
    logging.disable(logging.WARNING)  # the registration cap's log lines are not the subject
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            send(router, hosts(i))
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)


def test_unique_valid_hosts_of_maximal_length_cost_at_most_the_stated_bound(
    router: CohortRouter,
) -> None:
    used = growth(router, longest_valid_host, HOSTS)
    cached = min(HOSTS, 20_000)  # the default cache_size: the cache started over since
    bound = cached * ENTRY_BYTES + min(HOSTS, RECORDS_KEPT) * RECORD_BYTES
    assert router.status()["cached_hosts"] <= 20_000
    assert used <= bound, f"{used / HOSTS:.0f} B per host, {used / 1e6:.1f} MB"


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(lambda i: f"{i:0250d}.evil.com", id="260-chars-outside-every-domain"),
        pytest.param(lambda i: f"{i:0257d}.-x", id="260-chars-malformed"),
        pytest.param(lambda i: f"{i:08000d}.{DOMAIN}", id="8KB"),
        pytest.param(lambda i: f"{i:065536d}", id="64KB"),
    ],
)
def test_unique_rejected_or_over_long_hosts_cost_a_small_constant(
    router: CohortRouter, garbage: Callable[[int], str]
) -> None:
    count = 2_000 if len(garbage(0)) > 10_000 else HOSTS
    used = growth(router, garbage, count)
    assert used <= MAX_REJECTED * 500 + 100_000, f"{used / 1e6:.2f} MB for {count} hosts"

"""Failing closed during a gated migration: a router that cannot confirm the store's revision for
longer than its horizon answers 503 + Retry-After to the tenants the rollout can reach, instead of
a version their data may no longer be at; everybody else keeps the last-known version.

Time is a ManualClock; the store is taken away in-process (a memory store that refuses reads) and,
for the real servers, through the loopback fault proxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, StoreUnavailableError, TenantRecord
from cohortroute._clock import ManualClock
from cohortroute.fail_closed import horizon
from cohortroute.policy import STATE_DATA, Policy
from cohortroute.store import MemoryStore, Store, open_store

from .apps import wsgi_version
from .faultproxy import FaultProxy
from .test_faults import poll, through

pytest.register_assert_rewrite("tests.services")
from tests.services import SHARED_BACKENDS  # noqa: E402

pytest_plugins = ("tests.services",)

INTERVAL = 1.0


class CutStore(MemoryStore):
    """A memory store whose reads fail while ``cut`` is set (writes still land: the runner's)."""

    cut = False

    def _check(self) -> None:
        if self.cut:
            raise StoreUnavailableError("cut off (test)")

    def revision(self) -> int:
        self._check()
        return super().revision()

    def policy(self) -> Policy:
        self._check()
        return super().policy()

    def tenant(self, name: str) -> TenantRecord:
        self._check()
        return super().tenant(name)


def gate(policy: Policy, *, on: bool) -> Policy:
    """The policy with its rollout gated (``on``) or not."""
    assert policy.rollout is not None
    return replace(policy, rollout=replace(policy.rollout, gated=on))


def gated_rollout(store: Store) -> None:
    """v1 the default, a gated rollout of v2 at 50 %, and ``fixed`` pinned to v1."""
    store.register_versions(["v1", "v2"], "v1", actor="test")
    store.start_rollout("v2", 50, actor="test")
    store.update_rollout("gate", partial(gate, on=True))
    store.pin("fixed", "v1", actor="test")


def migrated(store: Store, tenant: str) -> None:
    """What the runner's flip writes (the data mark), as a runner that reaches the store would."""
    store.update_tenant(
        tenant, "flip", lambda r, p: replace(r, state={**r.state, STATE_DATA: "v2"}), actor="test"
    )


def ask(router: Any, tenant: str) -> tuple[int, str, str | None]:
    response = Client(router).get("/", headers={"Host": f"{tenant}.example.com"})
    served = response.get_data(as_text=True).split()[0] if response.status_code == 200 else ""
    return response.status_code, served, response.headers.get("Retry-After")


def router_on(store: str | Store, clock: ManualClock, **options: Any) -> Any:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        refresh_interval=INTERVAL,
        register_tenants=False,
        clock=clock,
        **options,
    )


def test_the_horizon_is_the_refresh_interval_and_a_grace() -> None:
    assert horizon(1.0) == 1.5
    assert horizon(0.0) == 0.25  # a router that checks every request still gets a grace
    assert horizon(2.0) <= 2 * 2.0  # within the runner's default drain (twice the interval)


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "ungated"])
def test_a_cut_off_router_fails_closed_only_during_a_gated_migration(gated: bool) -> None:
    clock = ManualClock()
    store = CutStore()
    gated_rollout(store)
    if not gated:
        store.update_rollout("ungate", partial(gate, on=False))
    router = router_on(store, clock)
    before = ask(router, "acme")[:2]  # gated: v1 until migrated; ungated: by its bucket
    assert before[0] == 200 and (before[1] == "v1" or not gated)
    assert ask(router, "fixed")[:2] == (200, "v1")

    store.cut = True
    clock.advance(INTERVAL)  # within the horizon: the last-known decision
    assert ask(router, "acme")[:2] == before
    assert router.status()["degraded"] is True and router.status()["fail_closed"] is False
    clock.advance(horizon(INTERVAL) - INTERVAL)
    if not gated:
        assert ask(router, "acme")[:2] == before  # nothing can move its data: keep serving
        assert router.status()["fail_closed"] is False
        return
    status, _body, retry_after = ask(router, "acme")
    assert (status, retry_after) == (503, "30")  # not v1: its data may be migrated by now
    assert router.status()["fail_closed"] is True
    assert ask(router, "fixed")[:2] == (200, "v1")  # pinned elsewhere: the rollout cannot reach it
    response = Client(router).get("/", headers={"Host": "example.com"})
    assert response.status_code == 200  # no tenant, nothing to migrate

    store.cut = False
    migrated(store, "acme")  # what the runner did meanwhile
    clock.advance(INTERVAL)
    assert ask(router, "acme")[:2] == (200, "v2")
    assert router.status()["fail_closed"] is False


@pytest.fixture(params=SHARED_BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(f"{request.param}_url")
    return value


@pytest.fixture
def proxy(url: str) -> Iterator[FaultProxy]:
    parts = urlsplit(url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 0) as fault_proxy:
        yield fault_proxy


def test_a_partitioned_router_never_serves_the_old_version_on_migrated_data(
    url: str, proxy: FaultProxy
) -> None:
    clock = ManualClock()
    direct = open_store(url)
    try:
        gated_rollout(direct)
        router = router_on(through(url, proxy.port), clock)
        assert ask(router, "acme")[:2] == (200, "v1")
        assert ask(router, "fixed")[:2] == (200, "v1")

        proxy.cut()  # the router is partitioned; the runner is not
        migrated(direct, "acme")
        answers = [ask(router, "acme")]
        clock.advance(horizon(INTERVAL))
        answers += [ask(router, "acme") for _ in range(3)]
        assert [a[:2] for a in answers[1:]] == [(503, "")] * 3, answers
        assert answers[-1][2] is not None  # with Retry-After
        assert ask(router, "fixed")[:2] == (200, "v1")  # pinned elsewhere, known: served
        assert ask(router, "newcomer")[:2] == (503, "")  # nothing known: it may be migrated
        assert router.status()["fail_closed"] is True

        proxy.restore()
        clock.advance(INTERVAL)
        assert poll(lambda: ask(router, "acme")[:2] == (200, "v2"), 5.0) is not None, (
            router.status()
        )
        assert router.status()["fail_closed"] is False
        router.close()
    finally:
        direct.close()

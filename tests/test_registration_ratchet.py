"""The ratchet holds for quiet tenants, on every store: a burst of requests, then silence, then
lowering through RolloutController.set moves nobody back.

A tenant served once and never again must still be registered (so lowering can mark it), without
another request reaching the router that served it. The router's clock is a ManualClock: the
silence is an ``advance``, and the registration worker wakes on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, RolloutController
from cohortroute._clock import ManualClock
from cohortroute.decision import Reason, decide
from cohortroute.policy import TenantRecord
from cohortroute.router import REGISTER_DELAY
from cohortroute.store import Store, open_store

from .apps import wsgi_version
from .test_faults import poll

pytest.register_assert_rewrite("tests.services")
from tests.services import SHARED_BACKENDS  # noqa: E402

pytest_plugins = ("tests.services",)

BURST = 1_000


@pytest.fixture(params=["memory", "sqlite", *SHARED_BACKENDS])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Store]:
    kind = request.param
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
    else:
        url = request.getfixturevalue(f"{kind}_url")
    opened = open_store(url)
    yield opened
    opened.close()


def records(store: Store, tenants: list[str]) -> dict[str, TenantRecord]:
    """The tenants' records, in one scan of the store."""
    stored = {record.name: record for record in store.tenants()}
    return {name: stored.get(name, TenantRecord(name)) for name in tenants}


def on_candidate(store: Store, tenants: list[str]) -> set[str]:
    policy = store.policy()
    found = records(store, tenants)
    return {
        name
        for name in tenants
        if decide(policy, found[name], "v1", now=0).version == "v2"
        and decide(policy, found[name], "v1", now=0).reason is Reason.ROLLOUT
    }


def test_quiet_tenants_do_not_bounce_when_the_share_is_lowered(store: Store) -> None:
    clock = ManualClock()
    store.register_versions(["v1", "v2"], "v1", actor="test")
    controller = RolloutController(store, clock=clock, settle=0)
    controller.start("v2", percent=50)
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        clock=clock,
    )
    tenants = [f"quiet{n}" for n in range(BURST)]
    client = Client(router)
    before = set()
    for name in tenants:  # the burst: each tenant once, and never again
        response = client.get("/", headers={"Host": f"{name}.example.com"})
        assert response.status_code == 200
        if response.get_data(as_text=True).startswith("v2 "):
            before.add(name)  # served the candidate (by its record, or by its bucket alone)
    assert 400 < len(before) < 600
    assert before <= on_candidate(store, tenants)

    clock.advance(REGISTER_DELAY)  # silence: no request reaches the router from here on
    clock.advance(2.0)
    registered = poll(lambda: all(r.registered for r in records(store, list(before)).values()), 10)

    controller.set(1)
    after = on_candidate(store, tenants)
    bounced = before - after
    assert registered is not None and not bounced, (
        f"{len(bounced)} of {len(before)} tenants bounced back"
    )
    router.close()

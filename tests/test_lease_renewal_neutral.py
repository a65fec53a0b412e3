"""A migration runner renews its lease on a tenant every few seconds during a long step, and
each renewal is a store revision. Routers used to treat each as a change: they dropped every
cached decision and re-read their tenants (a two-hour step with a 30 s lease: hundreds of cold
caches on every router). A renewal changes no decision, so routers keep their caches for it;
any other change still drops them."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from cohortroute import CohortRouter
from cohortroute._clock import ManualClock
from cohortroute.policy import Policy, TenantRecord
from cohortroute.store import MemoryStore
from cohortroute.tenant_state import LEASE_RENEWED_ACTION

from .apps import wsgi_version
from .test_registration import CountedDrop, served_once


def _touch(record: TenantRecord, policy: Policy) -> TenantRecord:
    return replace(record, state={**record.state, "lease": {"owner": "runner-1", "until": 1e12}})


def test_a_lease_renewal_drops_no_decision_cache_but_a_pin_does() -> None:
    clock = ManualClock()
    store = MemoryStore()
    router = CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        store=store,
        clock=clock,
        register_tenants=False,
    )
    served_once(router, "acme", "globex")
    drops = Counter[str]()
    counted = CountedDrop("router", drops, router._dispatch.drop)
    setattr(router._dispatch, "drop", counted)  # noqa: B010 - replacing a method on purpose

    for _ in range(5):  # renewals, one refresh interval apart
        store.update_tenants(
            ["acme"], LEASE_RENEWED_ACTION, _touch, describe=lambda b, a: (None, None)
        )
        clock.advance(2.0)
        served_once(router, "acme", "globex")
    assert router.status()["revision"] == store.revision()  # it saw each one
    assert drops == {}, drops
    assert router.status()["cached_hosts"] == 2

    store.pin("acme", "v2")  # a real change still drops the caches
    clock.advance(2.0)
    served_once(router, "acme")
    assert drops["router"] >= 1
    assert router.explain("acme").version == "v2"
    router.close()

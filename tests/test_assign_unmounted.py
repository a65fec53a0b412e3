"""A backend naming a version the router does not mount: the router's warning names the backend,
and the decision's detail (what ``explain`` prints) says what decided, what is served instead,
and, last, which request-aware backends may still override it per request."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from werkzeug.test import Client

from cohortroute import Assignment, AssignmentBackend, CohortRouter, Query, Reason
from cohortroute._clock import ManualClock
from cohortroute.explain import explain

from .apps import wsgi_version

NOW = 1_790_000_000.0


@dataclass(frozen=True)
class Typo:
    """Names v9 (mounted nowhere) for globex."""

    name: str = "typo"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return Assignment("v9", "typo", "nonexistent version") if query.tenant == "globex" else None


@dataclass(frozen=True)
class Staff:
    """Request-aware, never answers here: only its note shows."""

    name: str = "staff"
    request_aware: bool = True
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return None


def router(*backends: AssignmentBackend) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2")},
        domains=["example.com"],
        assign=list(backends),
        clock=ManualClock(wall=NOW),
        register_tenants=False,
    )


def get(handle: CohortRouter, tenant: str) -> str:
    response = Client(handle).get("/", headers={"Host": f"{tenant}.example.com"})
    return response.get_data(as_text=True)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not mounted here" in r.getMessage()]


def test_the_warning_names_the_backend_that_named_the_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = router(Typo())
    with caplog.at_level(logging.WARNING, logger="cohortroute"):
        assert get(handle, "globex") == "v1 globex unmounted |/"
    assert warnings(caplog) == [
        "cohortroute: assignment backend 'typo' names version 'v9', which is not mounted here "
        "(mounted: v1, v2); serving 'v1' instead. Mount it, or fix what that backend answers."
    ]


def test_a_pin_to_an_unmounted_version_is_still_the_store_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = router(Typo())
    handle.store.register_versions(["v3"])  # mounted by another router
    handle.store.pin("acme", "v3")
    with caplog.at_level(logging.WARNING, logger="cohortroute"):
        assert get(handle, "acme") == "v1 acme unmounted |/"
    assert warnings(caplog) == [
        "cohortroute: the store names version 'v3', which is not mounted here (mounted: v1, v2); "
        "serving 'v1' instead. Mount it, or fix the pin/rule/rollout that names it."
    ]
    assert handle.explain("acme").detail == (
        "pinned to v3, but v3 is not mounted here; the default v1 is served instead"
    )


def test_the_detail_says_what_decided_then_what_is_served_then_the_request_aware_note() -> None:
    handle = router(Staff(), Typo())
    served = handle.explain("globex")
    assert (served.version, served.reason, served.backend) == ("v1", Reason.UNMOUNTED, "typo")
    assert served.detail == (
        "assignment backend typo answered v9 (typo: nonexistent version), but v9 is not mounted "
        "here; the default v1 is served instead; request-aware backend staff may override it "
        "per request"
    )
    alone = router(Typo()).explain("globex").detail
    assert alone == (
        "assignment backend typo answered v9 (typo: nonexistent version), but v9 is not mounted "
        "here; the default v1 is served instead"
    )


def test_explain_hints_name_the_backend_without_the_note_in_the_middle() -> None:
    handle = router(Staff(), Typo())
    explained = explain(
        handle.store.policy(),
        handle.store.tenant("globex"),
        now=NOW,
        mounted={"v1", "v2"},
        chain=handle.chain,
    )
    assert explained.decision.detail.startswith("assignment backend typo answered v9 (typo: ")
    assert explained.hints[:2] == [
        "v9 is not mounted on the routers that serve this tenant (they mount v1, v2), so they "
        "serve v1: mount v9 there, or change what assignment backend typo answers",
        "assignment backend typo decided v9 (typo: nonexistent version): change the data it "
        "reads, or a pin or tag rule ranked before it",
    ]


def test_status_counts_a_tenant_as_its_routers_serve_it_like_explain() -> None:
    # `cohortroute status` tallies every stored tenant: a backend naming an unmounted version
    # counted the tenant on v9 (reason backend) while explain said v1 (reason unmounted).
    from cohortroute.explain import tally

    handle = router(Typo())
    handle.store.register_tenants(["acme", "globex"])
    assert get(handle, "globex").startswith("v1 ")  # what the routers serve
    policy = handle.store.policy()
    counted = tally(policy, handle.store.tenants(), NOW, handle.chain)
    said = explain(policy, handle.store.tenant("globex"), now=NOW, chain=handle.chain)
    assert (said.decision.version, said.decision.reason) == ("v1", Reason.UNMOUNTED)
    assert "v9" not in counted.counts
    assert counted.counts["v1"] == {"default": 1, "unmounted": 1}

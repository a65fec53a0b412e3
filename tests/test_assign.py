"""Assignment backends: the chain's order, caching with a ttl, invalidation, and failures that
never fail a request."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from cohortroute import (
    PIN,
    ROLLOUT,
    TAG,
    Assignment,
    AssignmentBackend,
    Chain,
    CohortRouter,
    ConfigurationError,
    Query,
    Reason,
    decide,
)
from cohortroute._clock import ManualClock
from cohortroute.policy import Policy, Rollout, TenantRecord
from cohortroute.rollout import RolloutController

from .apps import wsgi_version


@dataclass
class Fixed:
    """A backend answering ``answers[tenant]`` (no opinion for others), counting its calls."""

    name: str
    answers: dict[str, str] = field(default_factory=dict)
    ttl: float | None = None
    timeout: float | None = None
    calls: int = 0

    def assign(self, query: Query, /) -> Assignment | None:
        self.calls += 1
        version = self.answers.get(query.tenant)
        return None if version is None else Assignment(version, "listed", f"{self.name} list")


@dataclass
class Raising:
    name: str = "broken"
    ttl: float | None = None
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        raise RuntimeError("billing database is down")


@dataclass
class Hanging:
    """Waits on ``release`` (set by the test's teardown), past its timeout."""

    release: threading.Event
    name: str = "slow"
    ttl: float | None = None
    timeout: float | None = 0.05

    def assign(self, query: Query, /) -> Assignment | None:
        self.release.wait(10)
        return Assignment("v2", "late")


def make(*backends: AssignmentBackend, clock: ManualClock | None = None) -> CohortRouter:
    return CohortRouter(
        {"v1": wsgi_version("v1"), "v2": wsgi_version("v2"), "v3": wsgi_version("v3")},
        domains=["example.com"],
        assign=list(backends),
        clock=clock or ManualClock(),
        register_tenants=False,
    )


def body(router: CohortRouter, host: str) -> str:
    response = Client(router).get("/", headers={"Host": host})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_custom_backend_sits_between_tag_rules_and_the_rollout() -> None:
    plan = Fixed("plan-tier", {"acme": "v2", "pinned": "v2", "tagged": "v2"})
    router = make(plan)
    router.store.pin("pinned", "v3")
    router.store.tag("tagged", "beta")
    router.store.set_rule("beta", "v3")
    RolloutController(router.store).start("v3", percent=100)
    assert body(router, "acme.example.com") == "v2 acme backend |/"
    assert body(router, "pinned.example.com") == "v3 pinned pin |/"
    assert body(router, "tagged.example.com") == "v3 tagged tag |/"
    assert body(router, "other.example.com") == "v3 other rollout |/"
    decision = router.explain("acme")
    assert (decision.reason, decision.backend) == (Reason.BACKEND, "plan-tier")
    assert decision.detail == "listed: plan-tier list"


def test_naming_the_builtins_chooses_the_precedence() -> None:
    plan = Fixed("plan-tier", {"pinned": "v2"})
    router = make(plan, PIN, TAG, ROLLOUT)
    router.store.pin("pinned", "v3")
    assert router.explain("pinned").backend == "plan-tier"
    assert [b.name for b in router.chain.backends] == ["plan-tier", "pin", "tag", "rollout"]


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        ([Fixed("x"), PIN], "list all of PIN, TAG and ROLLOUT"),
        ([Fixed("x"), Fixed("x")], "more than once"),
        ([Fixed("pin")], "built-in's name"),
        ([Fixed("")], "needs a `name`"),
        ([Fixed("x", ttl=-1)], "`ttl` must be None or a number"),
        ([Fixed("x", timeout=0)], "`timeout` must be > 0"),
    ],
)
def test_a_chain_that_cannot_work_is_refused_with_what_to_do(
    backends: list[AssignmentBackend], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Chain(backends)


@pytest.mark.parametrize("attr", ["ttl", "timeout"])
def test_a_backend_without_ttl_or_timeout_is_told_the_attribute_is_missing(attr: str) -> None:
    declared = {"name": "bare", "ttl": None, "timeout": None, "assign": lambda self, query: None}
    del declared[attr]
    bare = type("Bare", (), declared)()
    with pytest.raises(ConfigurationError) as refused:
        Chain([bare])
    message = str(refused.value)
    assert f"assignment backend 'bare' has no `{attr}` attribute" in message
    assert "missing" not in message


def test_an_answer_is_cached_with_the_host_until_its_ttl_runs_out() -> None:
    clock = ManualClock()
    plan = Fixed("plan-tier", {"acme": "v2"}, ttl=30)
    router = make(plan, clock=clock)
    assert body(router, "acme.example.com") == "v2 acme backend |/"
    body(router, "acme.example.com")
    assert plan.calls == 1
    plan.answers["acme"] = "v3"
    clock.advance(29)
    assert body(router, "acme.example.com").startswith("v2 ")
    clock.advance(2)
    assert body(router, "acme.example.com").startswith("v3 ")
    assert plan.calls == 2


def test_ttl_zero_is_never_cached_and_no_ttl_waits_for_invalidate() -> None:
    never = Fixed("live", {"acme": "v2"}, ttl=0)
    router = make(never)
    body(router, "acme.example.com")
    body(router, "acme.example.com")
    assert never.calls == 2
    kept = Fixed("kept", {"acme": "v2"})
    router = make(kept)
    body(router, "acme.example.com")
    body(router, "globex.example.com")
    kept.answers["acme"] = "v3"
    kept.answers["globex"] = "v3"
    assert body(router, "acme.example.com").startswith("v2 ")
    router.invalidate("ACME")
    assert body(router, "acme.example.com").startswith("v3 ")
    assert body(router, "globex.example.com").startswith("v1 ")  # only acme was forgotten
    router.invalidate()
    assert body(router, "globex.example.com").startswith("v3 ")


def test_a_store_write_still_invalidates_backend_answers() -> None:
    kept = Fixed("kept", {"acme": "v2"})
    router = make(kept)
    body(router, "acme.example.com")
    kept.answers["acme"] = "v3"
    router.store.tag("someone", "beta")  # any write moves the revision
    assert body(router, "acme.example.com").startswith("v3 ")


def test_a_raising_backend_is_skipped_logged_once_counted_and_explained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    router = make(Raising(), clock=clock)
    with caplog.at_level(logging.WARNING, logger="cohortroute.assign.chain"):
        assert body(router, "acme.example.com") == "v1 acme default |/"
        assert body(router, "globex.example.com") == "v1 globex default |/"
    assert len([r for r in caplog.records if "broken" in r.getMessage()]) == 1
    assert router.status()["assign_errors"] == {"broken": 2}
    assert router.explain("acme").errors == ("broken: RuntimeError: billing database is down",)
    clock.advance(6)  # a decision without a failed backend is retried after ERROR_TTL
    body(router, "acme.example.com")
    assert router.status()["assign_errors"] == {"broken": 4}  # 2 requests + explain + retry


def test_a_backend_past_its_timeout_is_skipped() -> None:
    release = threading.Event()
    try:
        router = make(Hanging(release))
        assert body(router, "acme.example.com") == "v1 acme default |/"
        assert router.status()["assign_errors"] == {"slow": 1}
        assert "no answer within its timeout of 0.05s" in router.explain("acme").errors[0]
    finally:
        release.set()


def test_a_backend_answering_garbage_or_an_unmounted_version_serves_the_fallback() -> None:
    @dataclass
    class Garbage:
        name: str = "garbage"
        ttl: float | None = None
        timeout: float | None = None

        def assign(self, query: Query, /) -> Assignment | None:
            return "v2"  # type: ignore[return-value]

    router = make(Garbage())
    assert body(router, "acme.example.com") == "v1 acme default |/"
    assert router.status()["assign_errors"] == {"garbage": 1}
    router = make(Fixed("typo", {"acme": "v9"}))
    assert body(router, "acme.example.com") == "v1 acme unmounted |/"
    assert router.explain("acme").backend == "typo"


def test_decide_and_the_controller_use_the_same_chain() -> None:
    plan = Fixed("plan-tier", {"t1": "v1", "t2": "v1"})
    router = make(plan)
    for name in ("t1", "t2", "t3", "t4", "t5", "t6"):
        router.store.tag(name, "registered")
    controller = RolloutController(router.store, assign=router.chain)
    controller.start("v2", percent=0)
    preview = controller.preview(100)
    assert set(preview.moves) == {"t3", "t4", "t5", "t6"}  # t1, t2 stay with plan-tier
    assert set(RolloutController(router.store).preview(100).moves) == {f"t{i}" for i in range(1, 7)}
    controller.set(100)
    for name in ("t1", "t2", "t3", "t4", "t5", "t6"):
        expected = "v1" if name in ("t1", "t2") else "v2"
        assert body(router, f"{name}.example.com").startswith(expected + " ")
        assert controller.explain(name).version == expected
    policy = router.store.policy()
    record = router.store.tenant("t1")
    assert decide(policy, record, "v1", chain=router.chain).backend == "plan-tier"
    assert decide(policy, record, "v1").backend == "rollout"


# --- precedence stays total with any chain -------------------------------------------------

VERSIONS = ["v1", "v2", "v3"]
NAMES = ["a", "b", "c", "d"]


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[AssignmentBackend], list[str]]:
    backends: list[AssignmentBackend] = []
    for i in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 4)) == 0:
            backends.append(Raising(name=f"raise{i}"))
        else:
            answers = draw(st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VERSIONS)))
            backends.append(Fixed(f"b{i}", answers))
    shuffled: bool = draw(st.booleans())
    if backends and shuffled:
        everything: list[AssignmentBackend] = [*backends, PIN, TAG, ROLLOUT]
        at: list[AssignmentBackend] = draw(st.permutations(everything))
        return list(at), [b.name for b in at]
    return backends, ["pin", "tag", *(b.name for b in backends), "rollout"]


@settings(max_examples=150, deadline=None)
@given(
    chain=chains(),
    name=st.sampled_from(NAMES),
    pin=st.none() | st.sampled_from(VERSIONS),
    tagged=st.booleans(),
    percent=st.none() | st.integers(0, 10_000),
)
def test_any_chain_any_state_gives_one_decision_naming_the_first_opinion(
    chain: tuple[list[AssignmentBackend], list[str]],
    name: str,
    pin: str | None,
    tagged: bool,
    percent: int | None,
) -> None:
    backends, order = chain
    rollout = None if percent is None else Rollout("v3", percent, "salt", started_at=0.0)
    policy = Policy(default="v1", rules=(("beta", "v2"),), rollout=rollout)
    record = TenantRecord(name, pin=pin, tags=frozenset({"beta"} if tagged else ()))
    decision = decide(policy, record, "v1", now=0.0, chain=Chain(backends))
    opinions = {
        "pin": pin,
        "tag": "v2" if tagged else None,
        "rollout": decide(
            Policy(default="v1", rollout=rollout), TenantRecord(name), "v1", now=0.0
        ).version
        if rollout is not None
        and decide(Policy(default="v1", rollout=rollout), TenantRecord(name), "v1", now=0.0).reason
        is Reason.ROLLOUT
        else None,
    }
    for b in backends:
        if isinstance(b, Fixed):
            opinions[b.name] = b.answers.get(name)
    first = next((n for n in order if opinions.get(n) is not None), "default")
    assert decision.backend == first
    assert decision.version == (opinions[first] if first != "default" else "v1")
    assert len(decision.errors) == sum(
        1
        for b in backends
        if isinstance(b, Raising)
        and (first == "default" or order.index(b.name) < order.index(first))
    )


def test_lowering_marks_the_ratchet_only_on_tenants_the_rollout_decided() -> None:
    plan = Fixed("plan-tier", {"t1": "v2"})
    router = make(plan)
    for name in ("t1", "t2"):
        router.store.tag(name, "registered")
    controller = RolloutController(router.store, assign=router.chain, settle=0)
    controller.start("v2", percent=100)
    assert controller.set_percent(0).kept == 1  # t2 only: plan-tier, not the rollout, has t1
    assert router.store.tenant("t1").ratchet is None
    assert router.store.tenant("t2").ratchet == "v2"


def test_the_contract_check_names_the_rule_a_backend_breaks() -> None:
    from cohortroute.testing import check_assignment_backend

    check_assignment_backend(Fixed("ok", {"acme": "v2"}), tenants=["acme", "b"], versions=VERSIONS)

    @dataclass
    class Flaky:
        name: str = "flaky"
        ttl: float | None = None
        timeout: float | None = None
        n: int = 0

        def assign(self, query: Query, /) -> Assignment | None:
            self.n += 1
            return Assignment("v2" if self.n % 2 else "v1")

    with pytest.raises(AssertionError, match="must be deterministic"):
        check_assignment_backend(Flaky(), tenants=["acme"], versions=VERSIONS)
    with pytest.raises(AssertionError, match="named 'v9', not one of"):
        check_assignment_backend(Fixed("typo", {"acme": "v9"}), tenants=["acme"], versions=VERSIONS)
    with pytest.raises(AssertionError, match="declarations are not usable"):
        check_assignment_backend(Fixed("x", ttl=-1), tenants=["acme"], versions=VERSIONS)

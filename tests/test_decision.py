"""The pure decision and its total precedence: override > pin > tag > rollout > default."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cohortroute.bucketing import bucket
from cohortroute.decision import Reason, decide
from cohortroute.policy import Policy, Rollout, TenantRecord

from .strategies import percents, tenants

VERSIONS = ["v1", "v2", "v3"]


def test_no_tenant_gets_the_default() -> None:
    d = decide(Policy(default="v1"), None, "v9")
    assert (d.tenant, d.version, d.reason) == (None, "v1", Reason.NO_TENANT)
    assert d.reason == "no-tenant"  # a str enum: compares with the documented names


def test_router_default_is_used_when_the_policy_has_none() -> None:
    assert decide(Policy(), TenantRecord("acme"), "v9").version == "v9"


def test_pins_and_tags_may_point_at_a_third_version_during_a_rollout() -> None:
    rollout = Rollout("v2", 10_000, "s")
    policy = Policy(default="v1", rules=(("internal", "v3"),), rollout=rollout)
    assert decide(policy, TenantRecord("qa", pin="v3"), "v1").version == "v3"
    assert decide(policy, TenantRecord("ops", tags=frozenset({"internal"})), "v1").version == "v3"
    assert decide(policy, TenantRecord("acme"), "v1").version == "v2"


def test_first_rule_in_order_wins_for_several_tags() -> None:
    policy = Policy(default="v1", rules=(("beta", "v2"), ("internal", "v3")))
    record = TenantRecord("acme", tags=frozenset({"internal", "beta"}))
    d = decide(policy, record, "v1")
    assert (d.version, d.reason, d.detail) == ("v2", Reason.TAG, "tag beta -> v2")


def test_rollout_reports_the_bucket() -> None:
    salt = "s"
    b = bucket(salt, "acme")
    inside = decide(
        Policy(default="v1", rollout=Rollout("v2", b + 1, salt)), TenantRecord("acme"), "v1"
    )
    outside = decide(
        Policy(default="v1", rollout=Rollout("v2", b, salt)), TenantRecord("acme"), "v1"
    )
    assert (inside.version, inside.reason, inside.bucket) == ("v2", Reason.ROLLOUT, b)
    assert (outside.version, outside.reason, outside.bucket) == ("v1", Reason.DEFAULT, b)


@given(
    tenant=tenants,
    override=st.none() | st.sampled_from(VERSIONS),
    pin=st.none() | st.sampled_from(VERSIONS),
    tagged=st.booleans(),
    rollout_percent=st.none() | percents,
)
def test_precedence_is_total(
    tenant: str,
    override: str | None,
    pin: str | None,
    tagged: bool,
    rollout_percent: int | None,
) -> None:
    rollout = None if rollout_percent is None else Rollout("v2", rollout_percent, "salt")
    policy = Policy(
        default="v1", versions=frozenset(VERSIONS), rules=(("beta", "v3"),), rollout=rollout
    )
    record = TenantRecord(tenant, pin=pin, tags=frozenset({"beta"}) if tagged else frozenset())
    d = decide(policy, record, "v1", override=override)
    # Exactly one reason applies, and it is the highest-ranked one that is present.
    if override is not None:
        assert (d.reason, d.version) == (Reason.OVERRIDE, override)
    elif pin is not None:
        assert (d.reason, d.version) == (Reason.PIN, pin)
    elif tagged:
        assert (d.reason, d.version) == (Reason.TAG, "v3")
    elif rollout is not None and bucket("salt", tenant) < rollout.percent:
        assert (d.reason, d.version) == (Reason.ROLLOUT, "v2")
    else:
        assert (d.reason, d.version) == (Reason.DEFAULT, "v1")
    assert d.tenant == tenant
    assert decide(policy, record, "v1", override=override) == d  # pure: same input, same answer

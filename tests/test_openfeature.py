"""The OpenFeature provider, through the official SDK: flags agree with routing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason as FlagReason
from werkzeug.test import Client

from cohortroute import CohortRouter, RolloutController
from cohortroute.openfeature import CohortRouteProvider, context_for, flag_reason

FLAGS: dict[str, dict[str, Any]] = {
    "new-checkout": {"v1": False, "v2": True},
    "banner": {"v2": "welcome back"},
    "limit": {"v1": 10, "v2": 20},
}


def _flagged_app(name: str) -> Any:
    """A version that answers the flag it sees, evaluated from the request's own decision."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        decision = environ["cohortroute.decision"]
        details = api.get_client("cohortroute-test").get_boolean_details(
            "new-checkout", False, context_for(decision)
        )
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {details.value} {details.reason}".encode()]

    return app


@pytest.fixture
def router() -> Iterator[CohortRouter]:
    app = CohortRouter(
        apps={"v1": _flagged_app("v1"), "v2": _flagged_app("v2")},
        default="v1",
        domains=["example.com"],
        store="memory://",
    )
    api.set_provider(CohortRouteProvider(app, FLAGS), domain="cohortroute-test")
    yield app
    api.clear_providers()
    app.close()


@pytest.fixture
def flags(router: CohortRouter) -> OpenFeatureClient:
    return api.get_client("cohortroute-test")


def test_pins_and_tags_are_targeting_matches_the_rollout_a_split(
    router: CohortRouter, flags: OpenFeatureClient
) -> None:
    router.store.pin("acme", "v2")
    router.store.tag("globex", "beta")
    router.store.set_rule("beta", "v2")
    tenants = [f"t{number}" for number in range(40)]
    RolloutController(router.store).register(tenants)
    router.store.start_rollout("v2", percent=50)

    def reason(tenant: str) -> str | None:
        return flags.get_boolean_details("new-checkout", False, EvaluationContext(tenant)).reason

    assert reason("acme") == reason("globex") == FlagReason.TARGETING_MATCH
    reasons = {reason(tenant) for tenant in tenants}
    assert reasons == {FlagReason.SPLIT, FlagReason.DEFAULT}


def test_a_flag_evaluated_inside_a_version_agrees_with_the_version_serving_it(
    router: CohortRouter, flags: OpenFeatureClient
) -> None:
    router.store.pin("acme", "v2")
    router.store.start_rollout("v2", percent=30)
    client = Client(router)
    served = {}
    for tenant in ["acme", *(f"shop{number}" for number in range(40))]:
        version, value, reason = client.get(
            "/", headers={"Host": f"{tenant}.example.com"}
        ).text.split()
        assert value == str(version == "v2")
        outside = flags.get_boolean_details("new-checkout", False, EvaluationContext(tenant))
        assert (outside.variant, str(outside.value), outside.reason) == (version, value, reason)
        served[tenant] = reason
    assert served["acme"] == FlagReason.TARGETING_MATCH
    assert {FlagReason.SPLIT, FlagReason.DEFAULT} <= set(served.values())


def test_string_and_integer_flags_resolve_per_version(
    router: CohortRouter, flags: OpenFeatureClient
) -> None:
    router.store.pin("acme", "v2")
    acme, globex = EvaluationContext("acme"), EvaluationContext("globex")
    assert flags.get_string_value("banner", "", acme) == "welcome back"
    assert flags.get_integer_value("limit", 0, acme) == 20
    assert flags.get_integer_value("limit", 0, globex) == 10
    missing = flags.get_string_details("banner", "plain", globex)  # v1 does not name it
    assert (missing.value, missing.reason, missing.variant) == ("plain", FlagReason.DEFAULT, "v1")


def test_unknown_flags_wrong_types_and_no_tenant_give_the_callers_default(
    flags: OpenFeatureClient,
) -> None:
    unknown = flags.get_boolean_details("nope", True, EvaluationContext("acme"))
    assert (unknown.value, unknown.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    mismatch = flags.get_string_details("limit", "x", EvaluationContext("acme"))
    assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)
    nobody = flags.get_boolean_details("new-checkout", True, EvaluationContext())
    assert (nobody.value, nobody.reason) == (True, FlagReason.DEFAULT)


def test_every_cohortroute_reason_has_an_openfeature_reason() -> None:
    from cohortroute import Reason

    assert {reason: flag_reason(reason) for reason in Reason} == {
        Reason.OVERRIDE: "STATIC",
        Reason.PIN: "TARGETING_MATCH",
        Reason.TAG: "TARGETING_MATCH",
        Reason.BACKEND: "TARGETING_MATCH",
        Reason.ROLLOUT: "SPLIT",
        Reason.DEFAULT: "DEFAULT",
        Reason.NO_TENANT: "DEFAULT",
        Reason.UNMOUNTED: "DEFAULT",
    }
    assert flag_reason("something-new") == "UNKNOWN"


def test_a_host_as_targeting_key_is_an_invalid_context_not_a_logged_exception(
    flags: OpenFeatureClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Passing the request's Host instead of the tenant is an easy mistake: the SDK logged a
    # traceback ("Unable to correctly evaluate flag") and answered GENERAL.
    details = flags.get_boolean_details("new-checkout", True, EvaluationContext("acme.example.com"))
    assert (details.value, details.error_code) == (True, ErrorCode.INVALID_CONTEXT)
    assert details.error_message is not None
    assert "targeting key" in details.error_message and "'acme'" in details.error_message
    assert not [record for record in caplog.records if record.exc_info]

"""Test injection: force a version through a router for a block or a whole test."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, UnknownVersionError, ValidationError
from cohortroute.testing import CohortOverrides, force_version

from .apps import wsgi_version


@pytest.fixture
def router() -> CohortRouter:
    r = CohortRouter({"v1": wsgi_version("v1"), "v2": wsgi_version("v2")}, domains=["example.com"])
    r.store.pin("globex", "v1")
    return r


def body(router: CohortRouter, host: str) -> str:
    return Client(router).get("/", headers={"Host": host}).get_data(as_text=True)


def test_force_every_request_then_undo(router: CohortRouter) -> None:
    with force_version(router, "v2"):
        assert body(router, "acme.example.com") == "v2 acme override |/"
        assert body(router, "globex.example.com") == "v2 globex override |/"  # beats a pin
        assert body(router, "example.com") == "v2 None override |/"
        assert router.explain("acme").reason == "override"
    assert body(router, "acme.example.com") == "v1 acme default |/"


def test_force_one_tenant(router: CohortRouter) -> None:
    with force_version(router, "v2", tenant="ACME"):
        assert body(router, "acme.example.com").startswith("v2 acme override")
        assert body(router, "initech.example.com").startswith("v1 initech default")


def test_nested_forces_restore_the_outer_one(router: CohortRouter) -> None:
    with force_version(router, "v2"):
        with force_version(router, "v1"):
            assert body(router, "acme.example.com").startswith("v1 acme override")
        assert body(router, "acme.example.com").startswith("v2 acme override")


def test_unknown_version_is_refused(router: CohortRouter) -> None:
    with (
        pytest.raises(UnknownVersionError, match="known versions: v1, v2"),
        force_version(router, "v3"),
    ):
        pass


def test_cohort_fixture_forces_for_one_test(cohort: CohortOverrides, router: CohortRouter) -> None:
    cohort.force(router, "v2", tenant="initech")
    assert body(router, "initech.example.com").startswith("v2 initech override")
    cohort.reset()
    assert body(router, "initech.example.com").startswith("v1 initech default")


@pytest.mark.parametrize("name", ["acme.example.com", "Bad_Name", "a" * 300, "ümlaut"])
def test_forcing_a_tenant_no_request_can_have_is_refused(router: CohortRouter, name: str) -> None:
    # The router resolves a tenant to the subdomain's label: a full host or a name that is not
    # one DNS label could never match, and the force would silently do nothing.
    with (
        pytest.raises(ValidationError, match=r"acme\.example\.com -> 'acme'"),
        force_version(router, "v2", tenant=name),
    ):
        pass  # pragma: no cover
    overrides = CohortOverrides()
    with pytest.raises(ValidationError):
        overrides.force(router, "v2", tenant=name)
    overrides.reset()
    assert body(router, "acme.example.com") == "v1 acme default |/"

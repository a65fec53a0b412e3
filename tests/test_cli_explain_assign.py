"""``explain --assign`` and ``status --assign``: the read commands decide as routers with custom
backends do (the backends of tests/test_cli_rollout_assign.py).

Without ``--assign`` the command line knows only pins, tag rules and the rollout, so for a tenant
a custom backend decides, ``cohortroute explain`` disagrees with the routers. With it, the CLI
says what a real router with those backends serves, tenant by tenant, and ``status`` counts
the same.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, open_store
from cohortroute._clock import ManualClock
from cohortroute.store import Store

from .apps import wsgi_version
from .cli_inproc import isolate
from .test_cli_rollout_assign import (
    EARLY,
    INSIDE,
    LATE,
    NEW,
    OLD,
    OUTSIDE,
    ROUTING,
    SALT,
    TENANTS,
    run,
)


@pytest.fixture
def routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The routers' backends, as a module in the current directory (where --assign finds it)."""
    isolate(monkeypatch)
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "explain_routing.py").write_text(ROUTING)
    monkeypatch.chdir(folder)
    sys.path.insert(0, str(folder))
    from explain_routing import backends  # type: ignore[import-not-found]

    yield backends
    sys.modules.pop("explain_routing", None)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    handle = open_store(url)
    handle.register_versions([OLD, NEW], OLD, actor="router")
    handle.register_tenants(TENANTS)
    handle.start_rollout(NEW, "50", salt=SALT, actor="tester")
    yield handle
    handle.close()


def served(router: CohortRouter, tenant: str) -> tuple[str, str]:
    """(version, reason) a request for ``tenant`` gets from ``router``."""
    body = Client(router).get("/", base_url=f"http://{tenant}.example.com").get_data(as_text=True)
    version, _, reason, _ = body.split(" ", 3)
    return version, reason


@pytest.fixture
def router(url: str, store: Store, routing: list[object]) -> Iterator[CohortRouter]:
    """A router with the custom backends, on the CLI's store."""
    handle = CohortRouter(
        {OLD: wsgi_version(OLD), NEW: wsgi_version(NEW)},
        default=OLD,
        domains=["example.com"],
        store=url,
        assign=routing,  # type: ignore[arg-type]
        clock=ManualClock(),
        register_tenants=False,
    )
    yield handle
    handle.close()


def test_explain_with_assign_says_what_the_router_serves_each_tenant(
    url: str, router: CohortRouter
) -> None:
    assign = ("--assign", "explain_routing:backends")
    for tenant in TENANTS:
        explained = json.loads(run("explain", tenant, "--json", *assign, url=url).out)
        assert (explained["version"], explained["reason"]) == served(router, tenant), tenant
    early = json.loads(run("explain", EARLY[0], "--json", *assign, url=url).out)
    assert (early["version"], early["reason"]) == (NEW, "backend")
    assert any("assignment backend listed decided" in hint for hint in early["hints"])
    late = run("explain", LATE[0], *assign, url=url).out
    assert f"{LATE[0]} -> {OLD} (reason: backend)" in late
    assert "this region goes last" in late


def test_explain_without_assign_is_the_built_ins_view(url: str, router: CohortRouter) -> None:
    """The documented limitation: the rollout's bucket decides, whatever the backends say."""
    for tenant, expected in [(EARLY[0], (OLD, "default")), (LATE[0], (NEW, "rollout"))]:
        explained = json.loads(run("explain", tenant, "--json", url=url).out)
        assert (explained["version"], explained["reason"]) == expected
        assert served(router, tenant) == (NEW if expected[0] == OLD else OLD, "backend")


def test_status_with_assign_counts_what_the_routers_serve(url: str, router: CohortRouter) -> None:
    by_request = Counter(served(router, tenant) for tenant in TENANTS)
    status = json.loads(
        run("status", "--json", "--assign", "explain_routing:backends", url=url).out
    )
    tenants = status["tenants"]
    assert tenants["stored"] == len(TENANTS)
    assert tenants["by_version"] == {
        version: sum(n for (v, _), n in by_request.items() if v == version)
        for version in (OLD, NEW)
    }
    assert tenants["by_reason"] == {
        reason: sum(n for (_, r), n in by_request.items() if r == reason)
        for reason in ("backend", "rollout", "default")
    }
    assert tenants["by_reason"]["backend"] == len(EARLY + LATE)
    assert tenants["by_version"][NEW] == len(INSIDE)  # three sent early, three held back

    text = run("status", "--assign", "explain_routing:backends", url=url).out
    assert f"{NEW}  {len(INSIDE):>5}  (backend 3, rollout {len(INSIDE) - 3})" in text

    blind = json.loads(run("status", "--json", url=url).out)["tenants"]
    assert blind["by_reason"] == {"rollout": len(INSIDE), "default": len(OUTSIDE)}  # built-ins


def test_explain_and_status_refuse_a_bad_assign(url: str, store: Store, routing: object) -> None:
    for command in (("explain", TENANTS[0]), ("status",)):
        for spec, message in [
            ("nocolon", "--assign wants MODULE:ATTR"),
            ("nope_mod:x", "cannot import 'nope_mod'"),
            ("explain_routing:missing", "has no attribute 'missing'"),
        ]:
            err = run(*command, "--assign", spec, url=url, code=2).err
            assert message in err, (command, spec, err)

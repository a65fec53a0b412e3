"""Fencing: a runner paused past its lease never leaves a migrated tenant on data it rewrote.

The scenario: runner A is inside a step when it is paused (SIGSTOP, a long GC pause); its lease
expires; runner B takes the tenant over, migrates it and flips it; A wakes up and finishes its
step. With fenced steps (the step passes its token to the app's compare-and-set write) A's
write is refused and the tenant stays migrated. With a step that ignores the token, A's write
lands, and the runner must notice before recording it: the tenant is marked broken (503, never
a version on data two runners wrote) and the rollout is halted.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from cohortroute import CohortRouter, ConflictError
from cohortroute._clock import ManualClock
from cohortroute.decision import decide
from cohortroute.migrations import (
    LeaseLostError,
    Migrations,
    MigrationStep,
    StepContext,
    run_step,
)
from cohortroute.policy import Lease
from cohortroute.rollout import RolloutController
from cohortroute.store import MemoryStore, Store, open_store

from .migration_app import make_migrations, read_fence, read_schema, spawn, steps_run, version_app

LEASE = 30.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def controller(store: Store, migrations: Migrations, **kwargs: Any) -> RolloutController:
    return RolloutController(
        store, migrations=migrations, settle=0, drain=0, lease_ttl=LEASE, **kwargs
    )


def served(store: Store, tenant: str) -> tuple[str, bool]:
    """The version routers serve ``tenant`` now, and whether they answer 503 instead."""
    policy = store.policy()
    decision = decide(policy, store.tenant(tenant), "v1")
    return decision.version, decision.maintenance


# --- in-process, on a ManualClock -------------------------------------------------------------


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced-step", "unfenced-step"])
def test_a_runner_paused_past_its_lease_never_leaves_rewritten_data_served(
    folder: Path, fenced: bool
) -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    # Each runner has its own clock: A's stands still while it is "paused" (so its heartbeat
    # cannot renew), B's moves past A's lease.
    clock_a, clock_b = ManualClock(), ManualClock()
    entered, release = threading.Event(), threading.Event()
    slow = controller(
        store, make_migrations(folder, hold=(entered, release), fenced=fenced), clock=clock_a
    )
    slow.register(["acme", "bystander"])
    slow.start("v2", percent=100)
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.append(slow.migrate("acme")))
    runner.start()
    try:
        assert entered.wait(10)  # A is inside up3, under lease generation 1
        lease = store.tenant("acme").lease
        assert lease is not None and (lease.generation, lease.expires) == (
            1,
            clock_a.time() + LEASE,
        )
        clock_b.advance(LEASE + 1)
        other = controller(store, make_migrations(folder, fenced=fenced), clock=clock_b)
        took_over = other.migrate("acme")
        assert took_over.outcome == "moved", took_over
        assert served(store, "acme") == ("v2", False)
        assert read_schema(folder, "acme") == 3
    finally:
        release.set()  # A wakes up and finishes its step
        runner.join()
    (late,) = results
    record = store.tenant("acme")
    if fenced:  # the app's own write refused A's token: nothing happened to the data
        assert late.outcome == "busy" and "lost the lease" in str(late.error)
        assert served(store, "acme") == ("v2", False)
        assert record.migration_status == "ok"
        assert read_fence(folder, "acme") == 2
        assert not store.policy().rollout.halted  # type: ignore[union-attr]
    else:  # A's write landed after the flip: the tenant is fenced off and the rollout halted
        assert late.outcome == "broken" and "FENCED" in str(late.error)
        assert served(store, "acme") == ("v2", True)  # 503, never v2 on data A rewrote
        assert record.migration is not None and record.migration.fenced
        assert "rollout run --retry-failed" in str(record.migration.error)
        rollout = store.policy().rollout
        assert (
            rollout is not None and rollout.halted and "lost the lease" in str(rollout.halt_reason)
        )
        assert store.history("acme")[0].action == "migration-fenced"
        assert "broken" in other.status()["failed"]["acme"]
        # Nobody resumes it behind the operator's back, until they say the data is fine.
        assert other.pending() == []
        assert "acme" in other.pending(retry_failed=True)
        with pytest.raises(ConflictError, match=r"acme.*call run\(retry_failed=True\)"):
            other.finalize()
        assert other.run(retry_failed=True).moved == ["acme"]  # the operator checked its data
        assert served(store, "acme") == ("v2", False)
        record = store.tenant("acme")
    assert steps_run(folder, "acme", "up3") == 2
    assert record.lease is not None and record.lease.owner == ""
    assert served(store, "bystander") == ("v1", False)


def test_the_runner_checks_its_lease_before_every_step(folder: Path) -> None:
    # A runner that lost its lease between two steps stops before touching the data again.
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    clock_a, clock_b = ManualClock(), ManualClock()
    takeover: list[Any] = []

    def hook(event: str, tenant: str) -> None:
        if event == "step" and not takeover:  # after up1 is recorded, B takes over
            clock_b.advance(LEASE + 1)
            takeover.append(
                controller(store, make_migrations(folder), clock=clock_b).migrate(tenant)
            )

    first = controller(store, make_migrations(folder), clock=clock_a, on_event=hook)
    first.register(["acme"])
    first.start("v2", percent=100)
    result = first.migrate("acme")
    assert takeover[0].outcome == "moved"
    assert result.outcome == "busy" and "lost the lease" in str(result.error)
    assert steps_run(folder, "acme", "up2") == 1  # only B ran it
    assert served(store, "acme") == ("v2", False)


def test_a_step_sees_its_token_and_whether_the_lease_is_still_ours(folder: Path) -> None:
    store = MemoryStore()
    store.register_versions(["v1", "v2"], "v1")
    clock = ManualClock()
    seen: list[tuple[int, bool, str]] = []
    m = Migrations()
    m.version("v1", 0)
    m.version("v2", 2)

    @m.upgrade(1)
    def plain(tenant: str) -> None:  # the one-argument form keeps working
        seen.append((0, True, tenant))

    @m.upgrade(2)
    def fenced(tenant: str, step: StepContext) -> None:
        seen.append((step.token, step.still_ours(), str(step.step)))
        step.check()
        clock.advance(LEASE + 1)  # this step outlived its lease: nobody renewed it
        seen.append((step.token, step.still_ours(), repr(step)))
        with pytest.raises(LeaseLostError, match="generation 2"):
            step.check()

    c = controller(store, m, clock=clock)
    c.register(["acme"])
    c.start("v2", percent=100)
    earlier = {"lease": Lease("", 0, 1).to_json()}  # the next lease is generation 2
    store.update_tenant("acme", "seed", lambda r, p: replace(r, state={**r.state, **earlier}))
    assert c.migrate("acme").outcome == "moved"  # expired but never taken: still ours to record
    assert seen[0] == (0, True, "acme")
    assert seen[1] == (2, True, "app 1 -> 2")
    assert seen[2][:2] == (2, False) and "token=2" in seen[2][2]
    assert store.tenant("acme").lease == Lease("", 0.0, 2)
    assert MigrationStep("app", 2, "up", fenced).after == 2


def test_which_steps_receive_their_context() -> None:
    seen: list[object] = []
    context = StepContext("acme", 7, MigrationStep("app", 1, "up", None), lambda: True)

    def plain(tenant: str) -> None:
        seen.append(tenant)

    def closure(tenant: str, k: int = 3) -> None:  # the loop-variable idiom: no context
        seen.append(k)

    def fenced(tenant: str, step: StepContext) -> None:
        seen.append(step.token)

    def either(tenant: str, step: StepContext | None = None) -> None:  # the app calls it too
        seen.append(None if step is None else step.token)

    for fn in (plain, closure, fenced, either):
        run_step(fn, "acme", context)
    assert seen == ["acme", 3, 7, 7]


# --- two runner processes, SIGSTOP and SIGCONT --------------------------------------------------


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced-step", "unfenced-step"])
def test_sigstop_past_the_lease_then_sigcont(tmp_path: Path, folder: Path, fenced: bool) -> None:
    db = tmp_path / "state.db"
    store = open_store(f"sqlite:///{db}")
    store.register_versions(["v1", "v2"], "v1")
    router = CohortRouter(
        {"v1": version_app("v1", folder), "v2": version_app("v2", folder)},
        domains=["example.com"],
        store=store,
        refresh_interval=0,
        migrations=make_migrations(folder),
    )
    client = Client(router)

    def get() -> tuple[int, str]:
        response = client.get("/", headers={"Host": "acme.example.com"})
        return response.status_code, response.get_data(as_text=True)

    c = controller(store, make_migrations(folder))
    c.register(["acme"])
    c.start("v2", percent=100)
    fence = ["--fenced"] if fenced else []
    paused = spawn(db, folder, "acme", "--pause-in", "up2", *fence)
    try:
        _, status = os.waitpid(paused.pid, os.WUNTRACED)  # A stopped itself inside up2
        assert os.WIFSTOPPED(status)
        assert get()[0] == 503  # migrating
        # B's clock is past A's lease: to B, A is a runner that died two minutes ago.
        other = spawn(db, folder, "acme", "--clock-ahead", str(4 * LEASE), *fence)
        out, _ = other.communicate(timeout=60)
        assert json.loads(out)["outcome"] == "moved"
        assert get() == (200, "v2 acme schema 3")
        os.kill(paused.pid, signal.SIGCONT)
        out, _ = paused.communicate(timeout=60)
    finally:
        if paused.poll() is None:
            os.kill(paused.pid, signal.SIGCONT)
            paused.kill()
            paused.wait()
    late = json.loads(out)
    assert steps_run(folder, "acme", "up2") == 2
    if fenced:
        assert late["outcome"] == "busy"
        assert read_schema(folder, "acme") == 3  # A's late write was refused
        assert get() == (200, "v2 acme schema 3")
    else:
        assert late["outcome"] == "broken" and "FENCED" in late["error"]
        assert read_schema(folder, "acme") == 2  # A rewrote the data after the flip...
        status_code, body = get()
        assert status_code == 503 and "MISMATCH" not in body  # ...and nobody is served it
        assert store.policy().rollout.halted  # type: ignore[union-attr]
    router.close()
    store.close()

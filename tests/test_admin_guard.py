"""The signals page shows what the report shows of the guard: its actions in this rollout, the
tenants it leaves out (pinned or tag-ruled onto the candidate), and why the gate cannot say how
much more traffic it needs."""

from __future__ import annotations

from werkzeug.test import Client

from cohortroute import AdminApp
from cohortroute.store import Store

from .guard_world import World

TOKEN = "read-token-0123456789abcdef"


def _page(store: Store, now: float) -> str:
    app = AdminApp(
        store, tokens={TOKEN: "rita"}, secret=b"k" * 32, hosts=["admin.test"], clock=lambda: now
    )
    client = Client(app)
    client.post("/login", data={"token": TOKEN}, headers={"Host": "admin.test"})
    try:
        return client.get("/signals", headers={"Host": "admin.test"}).text
    finally:
        app.close()


def test_the_signals_page_lists_the_guards_actions_and_the_tenants_it_leaves_out() -> None:
    world = World()
    reached = world.start(25)
    broken = reached[-1]
    pinned = next(name for name in world.names if name not in reached)
    world.store.pin(pinned, "v2")
    guard = world.guard()
    for _ in range(30):
        world.minutes(1, error=lambda t, v: 0.3 if (t, v) == (broken, "v2") else 0.002)
        guard.check()
    text = _page(world.store, world.clock.time())
    assert "The guard&#x27;s actions in this rollout (newest first)" in text  # escaped caption
    row = f'<td>guard-send-back</td><td><a href="/tenants/{broken}">{broken}</a></td>'
    assert row in text
    left_out = f"1 tenant on the candidate by a pin or tag rule, neither judged nor moved: {pinned}"
    assert left_out in text


def test_before_the_guard_acts_the_page_says_so() -> None:
    world = World()
    world.start(25)
    world.minutes(2)
    text = _page(world.store, world.clock.time())
    assert "The guard has not acted in this rollout." in text
    assert "none (every tenant on the candidate is there by the rollout)" in text

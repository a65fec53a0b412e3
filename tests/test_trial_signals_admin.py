"""The admin console's rollout form: a dwell that is not a finite number of seconds is refused
with a page saying what to enter, never a 500 and never a rollout stored with ``every=nan``."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from cohortroute.store import Store

from .test_admin import OPS_TOKEN, app_for, csrf_of, get, login, post, store

__all__ = ["store"]


@pytest.mark.parametrize("every", ["abc", "nan", "inf", "1e400", "-5"])
def test_start_form_refuses_a_dwell_that_is_not_seconds(store: Store, every: str) -> None:
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    token = csrf_of(get(client, "/rollout").text)
    form = {"csrf": token, "candidate": "v2", "plan": "1,5", "every": every}
    response = post(client, "/rollout/start", form)
    assert response.status_code in (400, 409), response.text
    assert "seconds" in response.text
    assert store.policy().rollout is None


def test_start_form_takes_a_blank_or_a_finite_dwell(store: Store) -> None:
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    token = csrf_of(get(client, "/rollout").text)
    form = {"csrf": token, "candidate": "v2", "plan": "1,5", "every": " 3600 "}
    assert post(client, "/rollout/start", form).status_code == 200
    rollout = store.policy().rollout
    assert rollout is not None and rollout.every == 3600


@pytest.mark.parametrize("plan", [None, [10, 50]])
def test_advance_confirmation_without_a_next_step_says_so(
    store: Store, plan: list[int] | None
) -> None:
    # a rollout started at a percentage (no plan), or at its plan's last step: nothing to
    # preview; the confirmation page was a 500 (the preview's ConflictError)
    from cohortroute import RolloutController

    controller = RolloutController(store, actor="ops")
    if plan is None:
        controller.start("v2", percent=50)
    else:
        controller.start("v2", plan=plan)
        controller.advance(force=True)
    client = Client(app_for(store))
    login(client, OPS_TOKEN)
    response = get(client, "/rollout/confirm?action=advance")
    assert response.status_code == 409, response.text
    assert "no next step" in response.text
    assert "Confirm advance" not in response.text
    # said as commands an operator runs, not as Python calls
    assert "call preview(" not in response.text
    if plan is None:
        assert "run `cohortroute rollout preview --percent 50`" in response.text
    assert 'href="/rollout"' in response.text
    for action in ("halt", "rollback"):
        assert get(client, f"/rollout/confirm?action={action}").status_code == 200


def test_signals_page_with_the_signals_store_down_says_so(store: Store) -> None:
    from typing import Any

    from cohortroute import AdminApp
    from cohortroute.errors import StoreUnavailableError

    class Down:
        def rows(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailableError("cannot read signal rows in Redis at 127.0.0.1:6379")

        tickets = rows

    admin = AdminApp(store, anonymous="read-only", signals=Down())
    response = Client(admin).get("/signals")
    assert response.status_code == 503
    assert "cannot read signal rows" in response.text and "retry" in response.text
    assert Client(admin).get("/").status_code == 200

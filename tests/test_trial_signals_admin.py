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

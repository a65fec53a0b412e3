"""Flask cookbook: two versions of one Flask app, each a set of blueprints, behind a router.

The application factory is shared; what differs between versions is the set of blueprints it
registers. Serve it with gunicorn (every version is WSGI)::

    export COHORTROUTE_STORE=sqlite:///cohortroute.db   # the router and the CLI share it
    gunicorn -w 2 examples.cookbook_flask.app:app
    # in another terminal, with the same export:
    cohortroute tag acme beta && cohortroute rule beta 2026.12
    curl -H 'Host: acme.localhost:8000' http://127.0.0.1:8000/checkout/
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from cohortroute import CohortRouter

catalog_v1 = Blueprint("catalog", __name__)
catalog_v2 = Blueprint("catalog", __name__)
checkout_v2 = Blueprint("checkout", __name__, url_prefix="/checkout")


@catalog_v1.get("/")
def catalog_home_v1() -> ResponseReturnValue:
    return _answer("catalog")


@catalog_v2.get("/")
def catalog_home_v2() -> ResponseReturnValue:
    return _answer("catalog with search")


@checkout_v2.get("/")
def checkout_home() -> ResponseReturnValue:
    return _answer("one-page checkout")


def _answer(page: str) -> ResponseReturnValue:
    decision = request.environ["cohortroute.decision"]
    return jsonify(
        page=page,
        version=decision.version,
        tenant=decision.tenant,
        reason=decision.reason.value,
    )


def create_app(blueprints: Sequence[Blueprint]) -> Flask:
    """The shared factory: one Flask app with the given blueprints."""
    flask_app = Flask(__name__)
    for blueprint in blueprints:
        flask_app.register_blueprint(blueprint)
    return flask_app


app = CohortRouter(
    apps={
        "2026.11": create_app([catalog_v1]),
        "2026.12": create_app([catalog_v2, checkout_v2]),
    },
    default="2026.11",
    domains=["example.com", "localhost"],
    store=os.environ.get("COHORTROUTE_STORE", "sqlite:///cohortroute.db"),
)

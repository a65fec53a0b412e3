"""Moving from Flask to FastAPI tenant by tenant: one router, a WSGI and an ASGI version.

``2026.11`` is the Flask app you have; ``2026.12`` is its FastAPI rewrite. The router is ASGI
because one version is, and it runs the Flask version on worker threads (PEP 3333 intact), so
uvicorn serves both. Move tenants with pins, tags or a rollout; move one back with
``cohortroute rollout rollback --tenant acme``::

    export COHORTROUTE_STORE=sqlite:///cohortroute.db   # the router and the CLI share it
    uvicorn examples.flask_to_fastapi.app:app
    # in another terminal, with the same export:
    cohortroute pin qa 2026.12
    curl -H 'Host: qa.localhost:8000' http://127.0.0.1:8000/orders/1
    cohortroute rollout start 2026.12 --plan 5,25,100 --every 1d
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from flask import Flask, jsonify
from flask import request as flask_request
from flask.typing import ResponseReturnValue

from cohortroute import CohortRouter

legacy = Flask(__name__)


@legacy.get("/orders/<int:number>")
def legacy_order(number: int) -> ResponseReturnValue:
    decision = flask_request.environ["cohortroute.decision"]
    return jsonify(order=number, framework="flask", tenant=decision.tenant)


rewrite = FastAPI(title="shop on FastAPI")


@rewrite.get("/orders/{number}")
async def order(number: int, request: Request) -> dict[str, Any]:
    decision = request.scope["cohortroute.decision"]
    return {"order": number, "framework": "fastapi", "tenant": decision.tenant}


app = CohortRouter(
    apps={"2026.11": legacy, "2026.12": rewrite},
    default="2026.11",
    domains=["example.com", "localhost"],
    store=os.environ.get("COHORTROUTE_STORE", "sqlite:///cohortroute.db"),
)

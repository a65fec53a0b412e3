"""The shop's WSGI app, release 2026.12.

It imports ``shop.pricing`` lazily, inside the view, as real apps do: in one process holding
both releases that import would find whichever ``shop`` was imported last. Behind a proxy the
app is wrapped in ``cohortroute.Signals`` when COHORTROUTE_STORE is set, so the requests of
each tenant are counted for this release.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import shop


def shop_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    from shop import pricing  # lazy, on purpose

    tenant = environ.get("HTTP_X_COHORTROUTE_TENANT", "-")
    sku = environ.get("PATH_INFO", "/").strip("/") or "basket"
    body = (
        f"release={shop.RELEASE} tenant={tenant} price({sku})={pricing.price(sku)} New checkout\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _application() -> Any:
    store = os.environ.get("COHORTROUTE_STORE")
    if not store:
        return shop_app
    from cohortroute import Signals

    return Signals(shop_app, version=shop.RELEASE, store=store)


application = _application()

"""The ASGI router the uvicorn end-to-end signal test serves: signals on, over COHORTROUTE_STORE.

``v1`` answers 200 and ``v2`` 500; the store (seeded by the test) pins tenant ``broken`` to
``v2``. The flush interval is an hour, so only what is written at shutdown reaches the store.
"""

from __future__ import annotations

import os

from cohortroute import CohortRouter, SignalsConfig
from cohortroute._types import Receive, Scope, Send


async def v1(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"v1"})


async def v2(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # does not speak lifespan
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"v2"})


app = CohortRouter(
    {"v1": v1, "v2": v2},
    domains=["example.com"],
    store=os.environ["COHORTROUTE_STORE"],
    signals=SignalsConfig(flush_interval=3600),  # so only the flush at shutdown writes
    register_tenants=False,
)

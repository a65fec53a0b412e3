"""Versions served by another process: ``Upstream(url)`` mounted in ``apps=`` like an app.

``CohortRouter(apps={"2026.11": app, "2026.12": Upstream("unix:/run/shop-2026.12.sock")})``
forwards every request decided for ``2026.12`` to the server running that build, so each build
can live in its own virtualenv (two builds of one package cannot share a process). The package,
one concept a module: :mod:`.target` (the ``Upstream`` value and its options), :mod:`.headers`
(what is forwarded, removed and added), :mod:`.errors` (502/504 answers), :mod:`.wsgi` and
:mod:`.asgi` (the two forwarding paths, over httpx) and :mod:`.websocket` (websockets, ASGI only).
"""

from .target import Upstream, mount

__all__ = ["Upstream", "mount"]

"""The router: Host -> tenant -> decision -> one of several mounted app versions.

``CohortRouter(apps=..., domains=[...])`` returns a WSGI or an ASGI router. The package, one
concept a module: :mod:`.base` (options and the Python API), :mod:`._dispatch` (the decision
cache and the miss path), :mod:`.wsgi` and :mod:`.asgi` (the hot paths), :mod:`.lifespan` (ASGI
lifespan for every version), :mod:`.wsgi_bridge` with :mod:`.wsgi_environ` (WSGI versions under
the ASGI router), :mod:`.interfaces` (WSGI, ASGI 3 or ASGI 2), :mod:`.responses` (400 and 503),
:mod:`.registration` (recording served tenants), :mod:`.overrides` (test overrides) and
:mod:`.timed_plan` (timed rollout steps).
"""

from .asgi import ASGICohortRouter
from .base import DECISION_KEY, TENANT_KEY, CohortRouter, is_asgi_app
from .registration import REGISTER_DELAY
from .wsgi import WSGICohortRouter

__all__ = [
    "DECISION_KEY",
    "REGISTER_DELAY",
    "TENANT_KEY",
    "ASGICohortRouter",
    "CohortRouter",
    "WSGICohortRouter",
    "is_asgi_app",
]

"""The operator's console: see and steer a rollout in a browser (docs/admin.md).

:class:`AdminApp` is a WSGI application; mount it on a host outside the tenant domains, on a
separate port (``cohortroute admin``), or beside the router with :func:`host_dispatch`.
"""

from __future__ import annotations

from .app import AdminApp, host_dispatch
from .auth import OPERATOR, READER

__all__ = ["OPERATOR", "READER", "AdminApp", "host_dispatch"]

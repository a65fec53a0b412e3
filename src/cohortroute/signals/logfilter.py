"""A logging filter that adds the request's tenant and version to every log record.

The signal wrappers note the request a thread (WSGI) or task (ASGI) handles;
:class:`TenantLogFilter` copies it onto each record as ``record.tenant`` and
``record.version`` (``"-"`` outside a request), so a format string can show them::

    handler.addFilter(TenantLogFilter())
    handler.setFormatter(logging.Formatter("%(tenant)s %(version)s %(message)s"))
"""

from __future__ import annotations

import logging

from . import context
from .context import current

log = logging.getLogger(__name__)


class TenantLogFilter(logging.Filter):
    """Adds ``tenant`` and ``version`` attributes to log records (never filters one out).

    :param missing: the value both get outside a request (and ``tenant`` for a request with
        no tenant).
    """

    def __init__(self, name: str = "", *, missing: str = "-") -> None:
        super().__init__(name)
        self.missing = missing
        context.READERS[0] = True  # from now on, ASGI requests set their context

    def filter(self, record: logging.LogRecord) -> bool:
        tenant, version = current()
        record.tenant = tenant or self.missing
        record.version = version or self.missing
        return True

"""The proxy does the routing: nginx, Apache or HAProxy in front, no Python on the request path.

The same decision code as the router answers, in three ways: a map file of every known tenant's
host -> version pool (:mod:`.table`, written in each server's syntax by :mod:`.nginx`,
:mod:`.apache` and :mod:`.haproxy`, kept current by :mod:`.watch`), a decision endpoint the proxy
asks per request (:mod:`.endpoint`, for nginx ``auth_request`` or a forward-auth), and Apache's
``RewriteMap prg:`` program (:mod:`.prg`). :mod:`.decider` holds the router they all ask.
"""

from . import apache, haproxy, nginx
from .decider import Decider, Pools
from .table import Table

__all__ = ["Decider", "Pools", "Table", "apache", "haproxy", "nginx"]

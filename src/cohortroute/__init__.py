"""cohortroute: serve several versions of a multi-tenant app and move tenants between them.

Wrap the versions in :class:`CohortRouter`; each tenant (``acme`` in ``acme.example.com``) is
served the version decided for it by pins, tag rules and the rollout held in a store.
"""

from .admin import AdminApp
from .assign import (
    PIN,
    ROLLOUT,
    TAG,
    Assignment,
    AssignmentBackend,
    Chain,
    Query,
    RequestView,
)
from .bucketing import bucket
from .decision import Decision, Reason, decide
from .errors import (
    CohortRouteError,
    ConfigurationError,
    ConflictError,
    InvalidHostError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    UnknownVersionError,
    ValidationError,
)
from .migrations import Migrations
from .policy import AuditEntry, Policy, Rollout, TenantRecord, format_percent, parse_percent
from .rollout import Preview, RolloutController, RunResult, TenantResult
from .router import ASGICohortRouter, CohortRouter, WSGICohortRouter
from .router.interfaces import asgi, asgi2, wsgi
from .signals import Signals, SignalsConfig
from .store import Store, open_store
from .tenancy import SubdomainResolver, parse_host

__version__ = "0.1.0"

__all__ = [
    "PIN",
    "ROLLOUT",
    "TAG",
    "ASGICohortRouter",
    "AdminApp",
    "Assignment",
    "AssignmentBackend",
    "AuditEntry",
    "Chain",
    "CohortRouteError",
    "CohortRouter",
    "ConfigurationError",
    "ConflictError",
    "Decision",
    "InvalidHostError",
    "Migrations",
    "Policy",
    "Preview",
    "Query",
    "Reason",
    "RequestView",
    "Rollout",
    "RolloutController",
    "RunResult",
    "SchemaError",
    "Signals",
    "SignalsConfig",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SubdomainResolver",
    "TenantRecord",
    "TenantResult",
    "UnknownVersionError",
    "ValidationError",
    "WSGICohortRouter",
    "__version__",
    "asgi",
    "asgi2",
    "bucket",
    "decide",
    "format_percent",
    "open_store",
    "parse_host",
    "parse_percent",
    "wsgi",
]

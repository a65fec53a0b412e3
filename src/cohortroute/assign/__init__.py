"""Assignment backends: the chain of rules that decides each tenant's version.

A backend answers a version or "no opinion" for one tenant (:class:`AssignmentBackend`,
:class:`Assignment`); the built-ins (:data:`PIN`, :data:`TAG`, :data:`ROLLOUT`) are backends in
the same :class:`Chain` as the team's own, which the router, ``explain``, ``preview`` and the
rollout controller share. A request-aware backend (``request_aware = True``) is also asked per
request, with a read-only :class:`RequestView` of it. See docs/assignment.md.
"""

from __future__ import annotations

from .backend import Assignment, AssignmentBackend, Query
from .builtin import PIN, ROLLOUT, TAG
from .chain import ERROR_TTL, Chain, Outcome
from .request_view import RequestView

__all__ = [
    "ERROR_TTL",
    "PIN",
    "ROLLOUT",
    "TAG",
    "Assignment",
    "AssignmentBackend",
    "Chain",
    "Outcome",
    "Query",
    "RequestView",
]

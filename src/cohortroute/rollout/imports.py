"""Importing tenants from a file into the registry, with their tags, in audited batches.

The rollout controller's ``import_tenants`` and ``cohortroute tenants import`` both run
:func:`import_tenants`: names and tags are parsed and checked first (nothing is written when a
line is bad), then written ``batch_size`` tenants per transaction. Tags are added to what each
tenant carries, or, with ``replace_tags``, made exactly what the file says.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from .. import changes
from ..changes import ImportCounts
from ..errors import ValidationError
from ..store.base import Store
from .tenants import parse_tenant_lines, read_lines

log = logging.getLogger(__name__)

__all__ = ["ImportCounts", "import_tenants"]


def import_tenants(
    store: Store,
    source: str | os.PathLike[str] | Iterable[str],
    *,
    replace_tags: bool = False,
    batch_size: int = 50_000,
    actor: str | None = None,
) -> ImportCounts:
    """Import tenants from a file (or lines): one name per line, or CSV ``name,tag,tag...``.

    Returns what changed: the tenants new to the registry, the tenants whose tags changed, and
    how many tags were added and removed. Each tenant whose tags change gets an audit entry.
    """
    if batch_size < 1:
        raise ValidationError("batch_size must be at least 1")
    names, tags = parse_tenant_lines(read_lines(source))
    checked = changes.check_tenants(names)
    total = ImportCounts(listed=len(checked))
    for start in range(0, len(checked), batch_size):
        batch = ImportCounts()
        change = changes.import_tenants(
            checked[start : start + batch_size],
            tags,
            replace_tags=replace_tags,
            counts=batch,
            clock=store.clock,
        )
        store.write(change, actor=actor)
        total.add(batch)
    log.debug("imported %d tenants, %d new", len(checked), len(total.new))
    return total

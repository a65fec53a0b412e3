"""A custom store in one small class: the whole state as one JSON document in a file.

It plugs into cohortroute with one line -- the ``scheme="toy"`` in the class statement -- after
which ``store="toy:///path/state.json"`` works in ``CohortRouter``, the CLI and
``COHORTROUTE_STORE`` (the CLI imports it when ``COHORTROUTE_PLUGINS`` names this module or you
import it yourself). It is a teaching example: correct and atomic within one process (a lock,
and an atomic file replace), but not meant for several processes at once.

See docs/custom-store.md for the walk-through; tests/store/test_toy.py runs the store contract
suite against it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cohortroute.errors import ConfigurationError, StoreError
from cohortroute.policy import (
    AuditEntry,
    Policy,
    TenantRecord,
    audit_from_json,
    audit_to_json,
    policy_from_json,
    policy_to_json,
    tenant_from_json,
    tenant_to_json,
)
from cohortroute.store import ChangeFn, StateReader, Store


class _Snapshot(StateReader):
    """What a change function reads: the document as loaded at the start of the transaction."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    def policy(self) -> Policy:
        return policy_from_json(self._document["policy"], self._document["revision"])

    def tenant(self, name: str) -> TenantRecord:
        return tenant_from_json(name, self._document["tenants"].get(name))


class ToyStore(Store, scheme="toy"):
    """``toy:///path/to/state.json``: state in one JSON file, rewritten atomically on each write."""

    def __init__(self, path: Path) -> None:
        super().__init__()  # sets up change notification; always call it
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> ToyStore:
        path = urlsplit(url).path
        if not path or path == "/":
            raise ConfigurationError(f"toy store needs a file: toy:///path/state.json, not {url!r}")
        return cls(Path(path))

    # -- reading --------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return {"revision": 0, "policy": None, "tenants": {}, "audit": []}
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}; check the path") from exc
        try:
            document: dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{self.path} is not a toy store document: {exc}") from exc
        return document

    def revision(self) -> int:
        return int(self._load()["revision"])

    def policy(self) -> Policy:
        return _Snapshot(self._load()).policy()

    def tenant(self, name: str) -> TenantRecord:
        return _Snapshot(self._load()).tenant(name)

    def tenants(self) -> Iterator[TenantRecord]:
        tenants = self._load()["tenants"]
        for name in sorted(tenants):
            yield tenant_from_json(name, tenants[name])

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        entries = [audit_from_json(e) for e in reversed(self._load()["audit"])]
        return [e for e in entries if tenant is None or e.tenant == tenant][:limit]

    # -- the one write primitive -----------------------------------------------------------

    def commit(self, change: ChangeFn, actor: str) -> int:
        with self._lock:
            document = self._load()
            mutation = change(_Snapshot(document))
            if not mutation:
                return int(document["revision"])
            revision = int(document["revision"]) + 1
            if mutation.policy is not None:
                document["policy"] = policy_to_json(mutation.policy)
            for name, record in mutation.tenants.items():
                if record.is_empty():
                    document["tenants"].pop(name, None)
                else:
                    document["tenants"][name] = tenant_to_json(record)
            for entry in mutation.audit(revision, actor, self.clock.time()):
                document["audit"].append(audit_to_json(entry))
            document["revision"] = revision
            self._replace(document)
            return revision

    def _replace(self, document: dict[str, Any]) -> None:
        # Write a temporary file and rename it over the old one: readers see all or nothing.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(temporary, self.path)

"""A user's own store written from docs/custom-store.md alone passes the contract suite.

The store keeps the state as one JSON document guarded by an ``fcntl`` lock, so several
processes may share it: it runs the shared contract (processes writing at once lose nothing).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

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
from cohortroute.store import ChangeFn, Store, open_store
from cohortroute.store.base import FunctionReader
from cohortroute.testing.contract import SharedStoreContract

_ADVICE = "the store holds unreadable data (restore the file from a backup)"
_EMPTY: dict[str, Any] = {"revision": 0, "policy": None, "tenants": {}, "audit": []}


class LockedFileStore(Store, scheme="trial-locked-file"):
    """``trial-locked-file:///path/state.json``: one JSON document, one flock per operation."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @classmethod
    def from_url(cls, url: str) -> LockedFileStore:
        path = urlsplit(url).path
        if not path or path.endswith("/"):
            raise ConfigurationError(f"name a file: trial-locked-file:///dir/state.json ({url!r})")
        return cls(Path(path))

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[dict[str, Any]]:
        try:
            handle = open(self.lock_path, "a+")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StoreError(f"cannot open {self.lock_path}: {exc}; check the directory") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield self._load()
        finally:
            handle.close()

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return json.loads(json.dumps(_EMPTY))  # type: ignore[no-any-return]
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{self.path} is not a store document: {exc}") from exc
        if not isinstance(document, dict):
            raise StoreError(f"{self.path} is not a store document")
        return document

    @staticmethod
    def _policy(document: dict[str, Any]) -> Policy:
        raw = document["policy"]
        if raw is not None and not isinstance(raw, dict):
            raise StoreError(f"{_ADVICE}: the policy is not a JSON object: {raw!r}")
        try:
            return policy_from_json(raw, document["revision"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{_ADVICE}: the policy: {exc}") from exc

    @staticmethod
    def _tenant(document: dict[str, Any], name: str) -> TenantRecord:
        raw = document["tenants"].get(name)
        if raw is not None and not isinstance(raw, dict):
            raise StoreError(f"{_ADVICE}: tenant {name!r} is not a JSON object")
        try:
            return tenant_from_json(name, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{_ADVICE}: tenant {name!r}: {exc}") from exc

    def revision(self) -> int:
        with self._locked(False) as document:
            return int(document["revision"])

    def policy(self) -> Policy:
        with self._locked(False) as document:
            return self._policy(document)

    def tenant(self, name: str) -> TenantRecord:
        with self._locked(False) as document:
            return self._tenant(document, name)

    def tenants(self) -> Iterator[TenantRecord]:
        with self._locked(False) as document:
            records = [self._tenant(document, n) for n in sorted(document["tenants"])]
        return iter(records)

    def history(self, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        with self._locked(False) as document:
            entries = [audit_from_json(e) for e in reversed(document["audit"])]
        return [e for e in entries if tenant is None or e.tenant == tenant][:limit]

    def commit(self, change: ChangeFn, actor: str) -> int:
        with self._locked(True) as document:
            reader = FunctionReader(
                lambda: self._policy(document), lambda name: self._tenant(document, name)
            )
            mutation = change(reader)
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
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            os.replace(temporary, self.path)
            return revision

    def corrupt(self, text: str) -> None:
        with self._locked(True) as document:
            document["policy"] = json.loads(text)
            self.path.write_text(json.dumps(document), "utf-8")


class TestLockedFileStore(SharedStoreContract):
    process_count = 3
    process_writes = 40

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Iterator[Callable[[], Store]]:
        counter = iter(range(1_000_000))
        yield lambda: open_store(f"trial-locked-file://{tmp_path}/state-{next(counter)}.json")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"trial-locked-file://{tmp_path}/shared.json"

    def corrupt_policy(self, store: Store, text: str) -> None:
        assert isinstance(store, LockedFileStore)
        store.corrupt(text)

"""Shared by the cookbook tests: a store prepared before the server starts, JSON over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cohortroute import Store, open_store

from .e2e.servers import get


def prepared_store(tmp_path: Path, versions: list[str]) -> tuple[str, Store]:
    """A SQLite store in ``tmp_path`` that knows ``versions`` (the first is the default)."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(versions, versions[0], actor="test")
    return url, store


def get_json(port: int, host: str, path: str = "/") -> dict[str, Any]:
    """GET ``path`` with ``Host: host`` and decode the JSON answer (which must be a 200)."""
    status, body = get(port, host, path)
    assert status == 200, (status, body)
    decoded: dict[str, Any] = json.loads(body)
    return decoded

"""A tiny multi-tenant app with per-tenant data files, for the migration runner tests.

Each tenant's data is one JSON file whose ``schema`` is the number of the last step applied.
Version ``v1`` needs schema 1 and ``v2`` schema 3 (two upgrade steps). Each version's WSGI app
answers 500 ``MISMATCH`` when it is served a tenant whose data is at another schema: the tests
count those, and must see none.

Run as a script, it is a runner process (``python -m tests.migration_app STORE DIR TENANT``):
it migrates one tenant, optionally killing itself with SIGKILL at a chosen point, or waiting
for a start file so ten of them start together.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cohortroute.migrations import Migrations

SCHEMA = {"v1": 1, "v2": 3}


def read_schema(folder: Path, tenant: str) -> int:
    path = folder / f"{tenant}.json"
    if not path.exists():
        return 1
    return int(json.loads(path.read_text())["schema"])


def write_schema(folder: Path, tenant: str, schema: int) -> None:
    path = folder / f"{tenant}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"schema": schema}))
    os.replace(tmp, path)  # atomic: a step is all or nothing


def log_step(folder: Path, tenant: str, step: str) -> None:
    with (folder / "steps.log").open("a") as handle:
        handle.write(f"{tenant} {step} {os.getpid()}\n")


def steps_run(folder: Path, tenant: str, step: str) -> int:
    log = folder / "steps.log"
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.split()[:2] == [tenant, step])


def make_migrations(
    folder: Path,
    *,
    crash_mid: bool = False,
    slow: float = 0.0,
    fail: frozenset[str] = frozenset(),
    retry_after: int = 7,
    hold: tuple[threading.Event, threading.Event] | None = None,
) -> Migrations:
    """v1 -> v2 is two steps (schema 1 -> 2 -> 3), each with its downgrade.

    ``hold=(entered, release)`` makes the last upgrade step set ``entered`` and then wait for
    ``release``: a step that lasts exactly as long as the test wants.
    """
    m = Migrations(retry_after=retry_after)
    m.version("v1", 1)
    m.version("v2", 3)

    @m.upgrade(1)
    def create(tenant: str) -> None:
        write_schema(folder, tenant, 1)

    @m.upgrade(2)
    def add_column(tenant: str) -> None:
        log_step(folder, tenant, "up2")
        write_schema(folder, tenant, 2)

    @m.upgrade(3)
    def backfill(tenant: str) -> None:
        log_step(folder, tenant, "up3")
        if slow:
            time.sleep(slow)
        if hold is not None:
            hold[0].set()
            if not hold[1].wait(30):
                raise RuntimeError("the test never released the held step")
        if crash_mid:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-migrate: step 2 done, step 3 not
        if tenant in fail:
            raise RuntimeError(f"backfill failed for {tenant}")
        write_schema(folder, tenant, 3)

    @m.downgrade(3)
    def unfill(tenant: str) -> None:
        log_step(folder, tenant, "down3")
        write_schema(folder, tenant, 2)

    @m.downgrade(2)
    def drop_column(tenant: str) -> None:
        log_step(folder, tenant, "down2")
        write_schema(folder, tenant, 1)

    return m


def version_app(name: str, folder: Path) -> Any:
    """Version ``name`` as a WSGI app: 500 MISMATCH when a tenant's data is at another schema."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        tenant = environ["cohortroute.tenant"]
        schema = read_schema(folder, tenant)
        if schema != SCHEMA[name]:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"MISMATCH {name} on schema {schema}".encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {tenant} schema {schema}".encode()]

    return app


def main(argv: list[str] | None = None) -> int:
    from cohortroute.rollout import RolloutController

    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("folder", type=Path)
    parser.add_argument("tenant")
    parser.add_argument("--crash", choices=["leased", "mid", "migrated", "flipped"])
    parser.add_argument("--wait-for", type=Path, help="start only once this file exists")
    parser.add_argument("--slow", type=float, default=0.0)
    args = parser.parse_args(argv)

    def hook(event: str, tenant: str) -> None:
        if event == args.crash:
            os.kill(os.getpid(), signal.SIGKILL)

    migrations = make_migrations(args.folder, crash_mid=args.crash == "mid", slow=args.slow)
    controller = RolloutController(
        args.store, migrations=migrations, drain=0, settle=0, lease_ttl=30, on_event=hook
    )
    if args.wait_for is not None:
        print("ready", flush=True)
        while not args.wait_for.exists():
            time.sleep(0.005)
    result = controller.migrate(args.tenant)
    print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

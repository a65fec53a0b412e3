"""A tiny multi-tenant app with per-tenant data files, for the migration runner tests.

Each tenant's data is one JSON file whose ``schema`` is the number of the last step applied.
Version ``v1`` needs schema 1 and ``v2`` schema 3 (two upgrade steps). Each version's WSGI app
answers 500 ``MISMATCH`` when it is served a tenant whose data is at another schema: the tests
count those, and must see none.

Run as a script, it is a runner process (``python -m tests.migration_app STORE DIR TENANT``):
it migrates one tenant, optionally killing itself with SIGKILL at a chosen point, stopping
itself with SIGSTOP inside a step (a runner paused past its lease), or waiting for a start file
so ten of them start together.

With ``fenced``, the steps pass their fencing token to :func:`write_schema`, which refuses a
token older than the one the data was last written with: the compare-and-set a real app does
with ``UPDATE ... WHERE fence <= :token``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cohortroute.migrations import LeaseLostError, Migrations, StepContext

SCHEMA = {"v1": 1, "v2": 3}


def read_schema(folder: Path, tenant: str) -> int:
    path = folder / f"{tenant}.json"
    if not path.exists():
        return 1
    return int(json.loads(path.read_text())["schema"])


def write_schema(folder: Path, tenant: str, schema: int, token: int | None = None) -> None:
    """Write a tenant's schema; with ``token``, only if no newer runner wrote it (fencing)."""
    path = folder / f"{tenant}.json"
    with (folder / f"{tenant}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the compare and the set are one step
        fence = read_fence(folder, tenant)
        if token is not None and token < fence:
            raise LeaseLostError(
                f"{tenant} was written with fence {fence}, this runner has {token}"
            )
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"schema": schema, "fence": max(fence, token or 0)}))
        os.replace(tmp, path)  # atomic: a step is all or nothing


def read_fence(folder: Path, tenant: str) -> int:
    path = folder / f"{tenant}.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text()).get("fence", 0))


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
    fenced: bool = False,
    pause_in: str | None = None,
) -> Migrations:
    """v1 -> v2 is two steps (schema 1 -> 2 -> 3), each with its downgrade.

    ``hold=(entered, release)`` makes the last upgrade step set ``entered`` and then wait for
    ``release``: a step that lasts exactly as long as the test wants. ``pause_in="up2"`` makes
    that step stop its own process (SIGSTOP) before it writes, until the test sends SIGCONT.
    ``fenced`` makes the steps write with their fencing token.
    """

    def token(step: StepContext) -> int | None:
        return step.token if fenced else None

    def pause(name: str) -> None:
        if pause_in == name:
            os.kill(os.getpid(), signal.SIGSTOP)

    m = Migrations(retry_after=retry_after)
    m.version("v1", 1)
    m.version("v2", 3)

    @m.upgrade(1)
    def create(tenant: str) -> None:
        write_schema(folder, tenant, 1)

    @m.upgrade(2)
    def add_column(tenant: str, step: StepContext) -> None:
        log_step(folder, tenant, "up2")
        pause("up2")
        write_schema(folder, tenant, 2, token(step))

    @m.upgrade(3)
    def backfill(tenant: str, step: StepContext) -> None:
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
        write_schema(folder, tenant, 3, token(step))

    @m.downgrade(3)
    def unfill(tenant: str, step: StepContext) -> None:
        log_step(folder, tenant, "down3")
        write_schema(folder, tenant, 2, token(step))

    @m.downgrade(2)
    def drop_column(tenant: str, step: StepContext) -> None:
        log_step(folder, tenant, "down2")
        write_schema(folder, tenant, 1, token(step))

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


ROOT = Path(__file__).resolve().parent.parent


def spawn(db: Path, folder: Path, tenant: str, *args: str) -> subprocess.Popen[str]:
    """Start a runner process (this module as a script) on the SQLite store file ``db``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.migration_app",
            f"sqlite:///{db}",
            str(folder),
            tenant,
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def main(argv: list[str] | None = None) -> int:
    from cohortroute.rollout import RolloutController

    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("folder", type=Path)
    parser.add_argument("tenant")
    parser.add_argument("--crash", choices=["leased", "mid", "migrated", "flipped"])
    parser.add_argument("--wait-for", type=Path, help="start only once this file exists")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--pause-in", help="SIGSTOP this process inside that step (up2, up3)")
    parser.add_argument("--fenced", action="store_true", help="steps write with their token")
    parser.add_argument(
        "--clock-ahead", type=float, default=0.0, help="this runner's clock is that far ahead"
    )
    parser.add_argument("--lease", type=float, default=30.0)
    args = parser.parse_args(argv)

    def hook(event: str, tenant: str) -> None:
        if event == args.crash:
            os.kill(os.getpid(), signal.SIGKILL)

    migrations = make_migrations(
        args.folder,
        crash_mid=args.crash == "mid",
        slow=args.slow,
        fenced=args.fenced,
        pause_in=args.pause_in,
    )
    ahead = args.clock_ahead
    controller = RolloutController(
        args.store,
        migrations=migrations,
        drain=0,
        settle=0,
        lease_ttl=args.lease,
        on_event=hook,
        clock=lambda: time.time() + ahead,
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

"""The contract across processes: many writers on one shared store lose nothing."""

from __future__ import annotations

import importlib
import itertools
import logging
import multiprocessing
import queue
import time
import traceback
from collections import Counter
from typing import Any

from ...store.base import Store, open_store
from ._base import V1, V2, _increment

log = logging.getLogger(__name__)


def _writer(
    url: str, module: str, index: int, writes: int, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a spawned process
    """One writer process: open the store, then alternate a pin and a shared increment."""
    try:
        importlib.import_module(module)
        start.wait(timeout=60)
        store = open_store(url)  # after the barrier: creating a new store races too
        actor = f"writer-{index}"
        try:
            store.register_versions([V1, V2], default=V1, actor=actor)
            revisions = []
            for i in range(writes):
                if i % 2:
                    revision = store.update_tenant("shared", "count", _increment, actor=actor)
                else:
                    revision = store.pin(f"w{index}-{i}", V2, actor=actor)
                revisions.append(revision)
        finally:
            store.close()
        results.put((index, revisions, ""))
    except BaseException:
        results.put((index, [], traceback.format_exc()))


def assert_processes_lose_no_write(
    url: str,
    *,
    processes: int = 8,
    writes: int = 200,
    module: str | None = None,
    timeout: float = 300.0,
) -> None:
    """Let ``processes`` spawned processes write ``writes`` times each to the store at ``url``.

    Checks that no error reached a writer, no write was lost (a shared counter incremented by
    read-modify-write ends exact), every write got its own revision, each writer saw its
    revisions strictly increase, and the audit log holds one entry per write. ``url`` must name
    an empty store. ``module`` is the module defining the store class; without it the store is
    opened here first to find it, which also creates it before the writers start.
    """
    observer: Store | None = None
    if module is None:
        observer = open_store(url)
        module = type(observer).__module__
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_writer, args=(url, module, i, writes, start, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes: dict[int, tuple[list[int], str]] = {}
    seen: list[int] = []
    try:
        deadline = time.monotonic() + timeout
        while len(outcomes) < processes and time.monotonic() < deadline:
            if observer is not None:
                seen.append(observer.revision())  # reads never fail or go back while others write
            try:
                index, revisions, error = results.get(timeout=0.05)
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    break
                continue
            outcomes[index] = (revisions, error)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
            worker.close()
        results.close()
        results.join_thread()
        if observer is not None:
            observer.close()

    errors = [f"writer {i}: {error}" for i, (_, error) in sorted(outcomes.items()) if error]
    assert not errors, "\n".join(errors)
    assert len(outcomes) == processes, f"only {len(outcomes)} of {processes} writers reported"
    assert seen == sorted(seen), "the revision went backwards while processes wrote"
    for index, (revisions, _) in outcomes.items():
        assert all(a < b for a, b in itertools.pairwise(revisions)), f"writer {index} went back"
    total = processes * writes
    everything = sorted(r for revisions, _ in outcomes.values() for r in revisions)
    assert everything == list(range(2, 2 + total)), "a revision was lost or given twice"

    store = open_store(url)
    try:
        assert store.revision() == 1 + total
        assert store.tenant("shared").state.get("count", 0) == processes * (writes // 2)
        pinned = [r for r in store.tenants() if r.pin == V2]
        assert len(pinned) == processes * ((writes + 1) // 2)
        entries = store.history(limit=total + 10)
        assert len(entries) == total + 3
        by_actor = Counter(e.actor for e in entries if e.revision > 1)
        assert by_actor == {f"writer-{i}": writes for i in range(processes)}
    finally:
        store.close()

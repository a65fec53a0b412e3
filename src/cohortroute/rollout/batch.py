"""Moving many tenants: a thread pool, a failure limit, and a result per tenant.

``run``, ``rollback`` and ``finalize`` all move a list of tenants ``concurrency`` at a time.
Results come back in the order tenants finish; ``progress`` is called for each, from the
calling thread. Past ``max_failures`` failures no further tenant starts (those already running
finish) and the rollout is halted; tenants never started are reported ``skipped``. A crash of
the runner itself (a store error, an interrupt) stops the batch and is raised once the running
tenants have finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice

from ..errors import ValidationError, listed
from .results import RunResult, TenantResult

log = logging.getLogger(__name__)


def run_batch(
    action: str,
    names: list[str],
    move: Callable[[str], TenantResult],
    *,
    concurrency: int,
    max_failures: int | None,
    progress: Callable[[TenantResult], None] | None,
    halt: Callable[[str], object],
) -> RunResult:
    """Call ``move(name)`` for each of ``names``, ``concurrency`` at a time; halt past
    ``max_failures`` failures (None: no limit) by calling ``halt(reason)``."""
    if concurrency < 1:
        raise ValidationError("concurrency must be at least 1")
    result = RunResult(action)
    queue: Iterator[str] = iter(names)
    workers = min(concurrency, max(len(names), 1))
    crashed: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(workers, thread_name_prefix=f"cohortroute-{action}") as pool:
        running: dict[Future[TenantResult], str] = {}

        def submit(count: int) -> None:
            for name in islice(queue, count):
                running[pool.submit(move, name)] = name

        submit(workers)
        try:
            _drive(running, submit, result, crashed, max_failures, progress, halt)
        except KeyboardInterrupt:
            _say_interrupted(action, sorted(running.values()))
            raise
    if crashed:
        _say_crashed(action, result, sorted(name for name, _ in crashed))
        raise crashed[0][1]
    for name in queue:
        result.results.append(TenantResult(name, "skipped", error="the rollout was halted"))
    return result


def _drive(
    running: dict[Future[TenantResult], str],
    submit: Callable[[int], None],
    result: RunResult,
    crashed: list[tuple[str, BaseException]],
    max_failures: int | None,
    progress: Callable[[TenantResult], None] | None,
    halt: Callable[[str], object],
) -> None:
    """Collect finished tenants and start the next ones until none is running."""
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            name = running.pop(future)
            error = future.exception()
            if error is not None:  # the runner crashed: start nobody else
                crashed.append((name, error))
                continue
            outcome = future.result()
            result.results.append(outcome)
            if progress is not None:
                progress(outcome)
            failures = len(result.failures)
            if max_failures is not None and failures > max_failures and not result.halted:
                result.halted = (
                    f"{failures} tenants failed to migrate (more than max_failures="
                    f"{max_failures}); see `cohortroute rollout status`"
                )
                log.warning("halting the rollout: %s", result.halted)
                halt(result.halted)
        if not crashed and not result.halted:
            submit(len(done))


def _say_interrupted(action: str, names: list[str]) -> None:
    """Ctrl-C: the tenants being moved finish their current work before the command exits
    (stopping a step halfway would leave their data half-moved); say so, and how not to wait.
    A second Ctrl-C does not stop them either: the interpreter waits for the worker threads."""
    if not names:
        return
    log.warning(
        "cohortroute: interrupted: letting the %s of %d tenant(s) in progress finish (%s), so "
        "no tenant's data is left half-moved; to stop at once, kill the process (SIGKILL): "
        "they then stay in maintenance (503) until a later `cohortroute rollout run` resumes "
        "them once their lease expires",
        action,
        len(names),
        listed(names),
    )


def _say_crashed(action: str, result: RunResult, names: list[str]) -> None:
    """The runner itself failed (the store went away, say): the error is raised, and lost with
    it what was done before, and which tenants it was moving. Say both, and what to do."""
    moved = sum(1 for r in result.results if r.outcome == "moved")
    log.warning(
        "cohortroute: the %s stopped on an error after moving %d tenant(s); it was moving %s, "
        "which may be left in maintenance (503): once the cause is fixed, run it again (it "
        "resumes them when their lease expires), or see `cohortroute rollout status`",
        action,
        moved,
        listed(names),
    )

"""The guard's seeded simulation study: false halts, detection rates and times.

Runs :func:`cohortroute.guard.simulation.simulate` over ``--runs`` seeds per scenario (1,000 by
default) on every core, and prints the figures docs/guard.md quotes::

    python benchmarks/guard_simulation.py [--runs 1000] [--processes 2] [--scenario NAME]

Scenarios: no regression (every halt, rollback or tenant sent back is a false alarm), a 10x and a
3x error regression of every candidate tenant (detection rate and median minute of detection),
and one incompatible tenant failing 20 % of its requests (sent back alone, the rollout not rolled
back).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from cohortroute.guard.simulation import Outcome, Scenario, simulate

SCENARIOS = {
    "no regression": Scenario(),
    "10x regression": Scenario(regression=10.0),
    "3x regression": Scenario(regression=3.0),
    "one incompatible tenant": Scenario(broken=True),
}


def _run(job: tuple[str, int]) -> tuple[str, Outcome]:
    name, seed = job
    return name, simulate(SCENARIOS[name], seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--runs-broken", type=int, default=None, help="runs of the incompatible-tenant scenario"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeat for several; default: all)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, list[Outcome]] = {name: [] for name in SCENARIOS}
    with ProcessPoolExecutor(args.processes) as pool:
        for name in args.scenario or SCENARIOS:
            runs = args.runs
            if name == "one incompatible tenant" and args.runs_broken is not None:
                runs = args.runs_broken
            jobs = [(name, seed) for seed in range(runs)]
            results[name] = [o for _, o in pool.map(_run, jobs, chunksize=20)]
            report(name, results[name])
    print(f"done in {time.perf_counter() - started:.0f} s")


def report(name: str, outcomes: list[Outcome]) -> None:
    """Print one scenario's figures as soon as its runs are done."""
    if name == "no regression":
        alarms = sum(o.false_alarm for o in outcomes)
        print(f"{name}: {alarms}/{len(outcomes)} false halts, rollbacks or tenants sent back")
    elif name == "one incompatible tenant":
        _report_broken(outcomes)
    else:
        caught = [o.action_minute for o in outcomes if o.action_minute is not None]
        median = statistics.median(caught) if caught else None
        print(
            f"{name}: detected in {len(caught)}/{len(outcomes)} runs, "
            f"median minute {median} (stages of 60 minutes: 2, 10, 50, 100 tenants)"
        )
    sys.stdout.flush()


def _report_broken(broken: list[Outcome]) -> None:
    sent = sum(o.broken_tenant in o.breakers for o in broken)
    clean = sum(o.broken_tenant in o.breakers and o.action is None for o in broken)
    minutes = [o.breakers[o.broken_tenant] for o in broken if o.broken_tenant in o.breakers]
    others = sum(len(set(o.breakers) - {o.broken_tenant}) for o in broken)
    print(
        f"one incompatible tenant: sent back in {sent}/{len(broken)} runs "
        f"(median minute {statistics.median(minutes) if minutes else None}), "
        f"rollout not rolled back in {clean}/{len(broken)}; other tenants sent back: {others}"
    )


if __name__ == "__main__":
    main()

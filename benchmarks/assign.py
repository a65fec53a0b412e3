"""Assignment-backend costs: warm tenant requests, cold decisions, bucketers, cookie sampling.

Run: ``python benchmarks/assign.py`` (``--quick`` for a short run). Prints ns per call, the
median of several repeats, all from the same run:

* warm tenant request (one cached host): no backends, and a custom backend with a ttl -- the
  hot path must not move (the ttl is kept apart from the cache entry);
* cold decision (``decide()``): the built-in chain, and with one custom backend before the
  rollout;
* one bucket: ``sha256`` (ours), ``unleash`` with the ``mmh3`` wheel and with pure Python;
* an apex request (no tenant): without a visitor sample, a returning visitor (signed cookie
  checked), a new visitor (cookie made and set).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from cohortroute import Assignment, Chain, CohortRouter, Query, bucket, decide
from cohortroute.assign import murmur3
from cohortroute.assign.visitors import COOKIE
from cohortroute.changes import set_visitor_sample
from cohortroute.policy import Policy, Rollout, TenantRecord


class PlanTier:
    name = "plan-tier"
    ttl: float | None = 60.0
    timeout: float | None = None

    def assign(self, query: Query, /) -> Assignment | None:
        return Assignment("v2", "plan") if query.tenant.endswith("7") else None


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _start(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def bench(cases: dict[str, Callable[[], Any]], loops: int, repeats: int) -> dict[str, float]:
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, call in cases.items():
            start = time.perf_counter_ns()
            for _ in range(loops):
                call()
            results[name].append((time.perf_counter_ns() - start) / loops)
    return {name: statistics.median(values) for name, values in results.items()}


def router(**options: Any) -> Any:
    return CohortRouter({"v1": app, "v2": app}, domains=["example.com"], **options)


def request(target: Any, host: str, cookie: str | None = None) -> Callable[[], Any]:
    base = {"HTTP_HOST": host, "PATH_INFO": "/", "REQUEST_METHOD": "GET"}
    if cookie is not None:
        base["HTTP_COOKIE"] = cookie

    def call() -> Any:
        return target(dict(base), _start)

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    loops, repeats = (20_000, 3) if args.quick else (200_000, 7)

    plain, custom = router(), router(assign=[PlanTier()])
    for r in (plain, custom):
        request(r, "acme.example.com")()
    warm = bench(
        {
            "warm tenant, no backends": request(plain, "acme.example.com"),
            "warm tenant, cached custom backend": request(custom, "acme.example.com"),
            "building the environ alone": request(lambda e, s: None, "acme.example.com"),
        },
        loops,
        repeats,
    )

    rollout = Rollout("v2", 1000, "salt", started_at=0.0)
    policy = Policy(default="v1", rollout=rollout)
    record = TenantRecord("acme")
    chain = Chain([PlanTier()])
    cold = bench(
        {
            "decide(), built-in chain": lambda: decide(policy, record, "v1", now=0.0),
            "decide(), one custom backend": lambda: decide(
                policy, record, "v1", now=0.0, chain=chain
            ),
            "bucket sha256": lambda: bucket("salt", "acme-corp"),
            "bucket unleash (mmh3 if installed)": lambda: murmur3.murmur3_32(b"salt:acme-corp", 0),
            "bucket unleash (pure Python)": lambda: murmur3.murmur3_32_pure(b"salt:acme-corp", 0),
        },
        loops // 4,
        repeats,
    )

    key = "bench-visitor-secret-0123456789"
    off, on = router(visitor_key=key), router(visitor_key=key)
    on.store.write(set_visitor_sample("v2", 50))
    captured: list[str] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.extend(v for k, v in headers if k == "Set-Cookie")

    on({"HTTP_HOST": "example.com", "PATH_INFO": "/"}, capture)
    cookie = captured[0].split(";", 1)[0]
    assert cookie.startswith(COOKIE)
    request(off, "example.com")()
    visitors = bench(
        {
            "apex, no visitor sample": request(off, "example.com"),
            "apex, returning visitor (cookie checked)": request(on, "example.com", cookie),
            "apex, new visitor (cookie made and set)": request(on, "example.com"),
        },
        loops // 4,
        repeats,
    )
    print(f"mmh3 wheel: {murmur3.murmur3_32 is not murmur3.murmur3_32_pure}")
    for title, table in (("warm", warm), ("cold", cold), ("visitors", visitors)):
        print(f"\n{title}")
        for name, ns in table.items():
            print(f"  {name:45s} {ns:10.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""drip's benchmarks side by side with the alternatives, each scenario run several times, in one go.

    pip install -e '.[bench]'            # procrastinate, the one peer pip installs
    .venv/bin/python -m bench [--runs 3] [--only webhook,ordered,hot,latency,scheduler,idle,memory,console,
                                     cluster,e2e,fairness,history]
                              [--procrastinate-full]

Prepares what it needs: a database of its own, drip's processes under a key
prefix of their own, each peer under its own namespace (npm installs the Node
peers on first use; wrk comes from Debian's packages). Runs of drip and of its
peers alternate, so a noisy minute hurts them alike. Prints per scenario the
median and min–max of the runs, and drip's ratio to each peer measured in this
same invocation. Asserts nothing: the figures go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import console, drip_runs, history, load, scheduler, user
from bench.harness import bench_database
from bench.peers import bullmq, dramatiq_plain, procrastinate_lock, starlette_xadd
from bench.report import Row, attempt, table
from drip.core import settings as config
from tests.helpers import free_port
from tests.servers import RedisCluster

ORDERED = (1000, 20)
#: procrastinate's own load by default: at ~400 jobs/s (and slowing as jobs wait, ~90 jobs/s at 1,000 x 20)
#: the full load takes minutes a run. --procrastinate-full runs it at ORDERED all the same.
PROCRASTINATE = (200, 10)
HOT = (1, 20_000)
IDLE_QUEUES = 100_000
CONSOLE_QUEUES = 100_000


# --- scenarios ----------------------------------------------------------------------------------


def webhook(runs: int, database_url: str, redis_url: str) -> None:
    systems = {"drip": drip_runs.webhook,
               "drip, 2 web processes": functools.partial(drip_runs.webhook, processes=2),
               "Express + BullMQ (seed)": bullmq.webhook,
               "Express + BullMQ, 2 processes (node:cluster)": functools.partial(bullmq.webhook, processes=2),
               "bare Starlette + XADD": starlette_xadd.webhook}
    bullmq.ensure_installed()
    rows: dict[tuple[str, str], Row] = {}
    for system in systems:
        rows[("max", system)] = Row("max req/s, wrk -t2 -c50 10 s", system, unit="req/s")
        rows[("p50", system)] = Row("p50 at 1,000 req/s (10 s, constant rate)", system, unit="ms", digits=2)
        rows[("p99", system)] = Row("p99 at 1,000 req/s", system, unit="ms", digits=2)
    for _ in range(runs):
        for system, serve in systems.items():
            def one(system=system, serve=serve) -> None:
                with serve(free_port(), redis_url) as target:
                    rate, _, _ = load.wrk_max(target)
                    p50, p99 = load.paced(target, 1000, 10)
                rows[("max", system)].runs.append(rate)
                rows[("p50", system)].runs.append(p50)
                rows[("p99", system)].runs.append(p99)
            attempt(list(rows.values()), system, one)
    ordered_rows = [rows[(k, s)] for k in ("max", "p50", "p99") for s in systems]
    table("1. Webhook: POST one message per request", ordered_rows)


def ordered(runs: int, database_url: str, redis_url: str, procrastinate: tuple[int, int] = PROCRASTINATE) -> None:
    queues, per_queue = ORDERED
    pq, pp = procrastinate
    systems: dict[str, Callable[[], float]] = {
        "drip (ordered)": lambda: drip_runs.ordered(database_url, queues, per_queue),
        "dramatiq plain (no order)": lambda: dramatiq_plain.throughput(queues, per_queue, redis_url, database_url),
        "BullMQ, concurrency 10 (no order)": lambda: bullmq.throughput(queues, per_queue, redis_url, database_url),
        f"procrastinate lock=<queue> ({pq} × {pp})": lambda: procrastinate_lock.throughput(
            pq, pp, redis_url, database_url),
    }
    bullmq.ensure_installed()
    rows = {name: Row(f"{queues:,} queues × {per_queue}, no-op, pool 2 × 8: msgs/s", name, unit="msgs/s")
            for name in systems}
    for _ in range(runs):
        for name, run in systems.items():
            attempt(list(rows.values()), name, lambda name=name, run=run: rows[name].runs.append(run()))
    for row in rows.values():
        row.system = "drip" if row.system.startswith("drip") else row.system
    table("2. Ordered throughput (first enqueue → last handled)", list(rows.values()))


def hot(runs: int, database_url: str, redis_url: str) -> None:
    queues, per_queue = HOT
    row = Row(f"one queue × {per_queue:,}, no-op, pool 2 × 8: msgs/s", "drip", unit="msgs/s")
    for _ in range(runs):
        attempt([row], "drip", lambda: row.runs.append(drip_runs.ordered(database_url, queues, per_queue)))
    table("3. Hot queue", [row])


def latency(runs: int, database_url: str, redis_url: str, rate: float = 500.0) -> None:
    p50 = Row(f"enqueue → handler start p50, {rate:,.0f} msgs/s over 100 queues, 10 s", "drip", unit="ms",
              digits=1)
    p99 = Row("enqueue → handler start p99", "drip", unit="ms", digits=1)

    def one() -> None:
        a, b = drip_runs.latency(database_url, rate, 10, 100)
        p50.runs.append(a)
        p99.runs.append(b)

    for _ in range(runs):
        attempt([p50, p99], "drip", one)
    table("4. Latency", [p50, p99])


def scheduling(runs: int, database_url: str, redis_url: str) -> None:
    p50 = Row("promotion lag p50, 200 scheduled msgs/s over HTTP, 15 s", "drip", unit="ms", digits=1)
    p99 = Row("promotion lag p99", "drip", unit="ms", digits=1)
    burst = Row("promote 100,000 due at once (1,000 queues)", "drip", unit="s", digits=2)

    def lag() -> None:
        a, b = scheduler.lag_run(database_url, 15)
        p50.runs.append(a)
        p99.runs.append(b)

    for _ in range(runs):
        attempt([p50, p99], "drip", lag)
        attempt([burst], "drip", lambda: burst.runs.append(scheduler.burst_run(100_000, 1000)))
    table("5. Scheduler", [p50, p99, burst])


def idle(runs: int, database_url: str, redis_url: str) -> None:
    queues, per_queue = ORDERED
    base = Row(f"{queues:,} × {per_queue} msgs/s, no idle queues", "drip", unit="msgs/s")
    busy = Row(f"the same beside {IDLE_QUEUES:,} idle queues", "drip", unit="msgs/s")
    ratio = Row("ratio with ÷ without", "drip", digits=2)
    tick0 = Row("supervisor survey (its per-wake read), no idle queues", "drip", unit="ms", digits=2)
    tick1 = Row(f"supervisor survey with {IDLE_QUEUES:,} idle queues", "drip", unit="ms", digits=2)

    def one() -> None:
        without = drip_runs.ordered(database_url, queues, per_queue)
        with_idle, survey_before, survey_after = drip_runs.idle_scale(database_url, IDLE_QUEUES, queues, per_queue)
        base.runs.append(without)
        busy.runs.append(with_idle)
        ratio.runs.append(with_idle / without)
        tick0.runs.append(survey_before)
        tick1.runs.append(survey_after)

    for _ in range(runs):
        attempt([base], "drip", one)
    table("6. Idle scale", [base, busy, ratio, tick0, tick1])


def memory(runs: int, database_url: str, redis_url: str) -> None:
    rows: dict[str, Row] = {}
    for _ in range(runs):
        for what, value in drip_runs.memory(database_url).items():
            rows.setdefault(what, Row(what, "drip", digits=0)).runs.append(value)
    table("7. Memory (Redis INFO used_memory deltas over 10,000 of each; worker RSS)", list(rows.values()))


def scaling(runs: int, database_url: str, redis_url: str) -> None:
    """drip on a standalone Redis beside a 3 + 3 Redis Cluster started here (the broker on the standalone
    Redis in every setup, so only the data's home differs), with DRIP_REDIS_MIN_REPLICAS off and on. The
    ratios are standalone ÷ cluster: on one machine the cluster's six servers share its cores."""
    queues, per_queue = ORDERED
    with tempfile.TemporaryDirectory(prefix="drip-bench-cluster-") as folder:
        cluster = RedisCluster(Path(folder)).start()
        try:
            setups: dict[str, dict[str, object]] = {
                "drip, standalone Redis": {},
                "on a cluster 3 + 3": {"redis_url": cluster.url, "broker_url": redis_url},
                "on a cluster 3 + 3, DRIP_REDIS_MIN_REPLICAS=1": {"redis_url": cluster.url, "broker_url": redis_url,
                                                        "redis_min_replicas": 1},
            }
            rows: dict[tuple[str, str], Row] = {}
            for name in setups:
                rows[("ordered", name)] = Row(f"{queues:,} queues × {per_queue}, no-op, pool 2 × 8: msgs/s", name,
                                              unit="msgs/s")
                rows[("web", name)] = Row("webhook max req/s, wrk -t2 -c50 10 s", name, unit="req/s")
            for _ in range(runs):
                for name, extra in setups.items():
                    def one(name=name, extra=extra) -> None:
                        data_url = str(extra.get("redis_url", redis_url))
                        rows[("ordered", name)].runs.append(drip_runs.ordered(database_url, queues, per_queue,
                                                                              **extra))
                        web = {k: v for k, v in extra.items() if k != "redis_url"}
                        with drip_runs.webhook(free_port(), data_url, **web) as target:
                            rows[("web", name)].runs.append(load.wrk_max(target)[0])
                    attempt(list(rows.values()), name, one)
        finally:
            cluster.stop()
    table("11. Scaling out: a Redis Cluster beside one Redis", list(rows.values()))


def history_scale(runs: int, database_url: str, redis_url: str) -> None:
    """bench/history.py once (10M rows in a database of its own: one run is minutes)."""
    print("\n## 12. History at 10,000,000 rows\n")
    history.run()


def console_pages(runs: int, database_url: str, redis_url: str) -> None:
    rows: dict[str, Row] = {}
    for _ in range(runs):
        for what, value in console.run(database_url, CONSOLE_QUEUES).items():
            rows.setdefault(what, Row(what, "drip", unit="ms", digits=1)).runs.append(value)
    table(f"8. Console with {CONSOLE_QUEUES:,} queues (sequential requests over loopback)", list(rows.values()))


SCENARIOS: dict[str, Callable[[int, str, str], None]] = {
    "webhook": webhook, "ordered": ordered, "hot": hot, "latency": latency, "scheduler": scheduling,
    "idle": idle, "memory": memory, "console": console_pages, "cluster": scaling, "e2e": user.end_to_end,
    "fairness": user.fairness, "history": history_scale,
}
#: Scenarios run only when named (--only history, --only cluster): too heavy for every run.
NAMED_ONLY = ("history", "cluster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(s for s in SCENARIOS if s not in NAMED_ONLY),
                        help=f"comma-separated scenarios among {', '.join(SCENARIOS)}")
    parser.add_argument("--latency-rate", type=float, default=500.0,
                        help="messages per second of the latency scenario (default 500)")
    parser.add_argument("--procrastinate-full", action="store_true",
                        help=f"run procrastinate at drip's {ORDERED[0]:,} x {ORDERED[1]} load too (minutes per run; "
                             f"default {PROCRASTINATE[0]} x {PROCRASTINATE[1]})")
    args = parser.parse_args()
    scenarios = {**SCENARIOS, "latency": functools.partial(latency, rate=args.latency_rate),
                 "ordered": functools.partial(ordered, procrastinate=ORDERED if args.procrastinate_full
                                              else PROCRASTINATE)}
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose among {', '.join(SCENARIOS)}")
    redis_url = config.load().redis_url
    with bench_database() as database_url:
        for name in chosen:
            scenarios[name](args.runs, database_url, redis_url)


if __name__ == "__main__":
    main()

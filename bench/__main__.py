"""drip's benchmarks side by side with the alternatives, each scenario run several times, in one go.

    pip install -e '.[bench]'            # procrastinate, the one peer pip installs
    .venv/bin/python -m bench [--runs 3] [--only webhook,ordered,hot,latency,scheduler,idle,memory,console]
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
import statistics
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import console, drip_runs, load, scheduler
from bench.harness import bench_database
from bench.peers import bullmq, dramatiq_plain, procrastinate_lock, starlette_xadd
from bench.stats import summary
from drip.core import settings as config
from tests.helpers import free_port

ORDERED = (1000, 20)
#: procrastinate's own load by default: at ~400 jobs/s (and slowing as jobs wait, ~90 jobs/s at 1,000 x 20)
#: the full load takes minutes a run. --procrastinate-full runs it at ORDERED all the same.
PROCRASTINATE = (200, 10)
HOT = (1, 20_000)
IDLE_QUEUES = 100_000
CONSOLE_QUEUES = 100_000


@dataclass
class Row:
    """One measured figure of one system: its runs, and how to print them."""

    what: str
    system: str
    runs: list[float] = field(default_factory=list)
    unit: str = ""
    digits: int = 0

    def median(self) -> float:
        return statistics.median(self.runs)


def table(title: str, rows: list[Row]) -> None:
    """Print rows grouped by figure; each drip setup's ratio to every peer on the same figure (one
    column per setup: "drip", "drip, 2 web processes" ...)."""
    mine = list(dict.fromkeys(r.system for r in rows if r.system.startswith("drip")))
    print(f"\n## {title}\n")
    # For times, a ratio below 1 is drip ahead.
    print("| figure | system | median (min–max) | " + " | ".join(f"{m} ÷ system" for m in mine) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in mine) + " |")
    for row in rows:
        ratios = []
        for m in mine:
            ours = next((r for r in rows if r.what == row.what and r.system == m and r.runs), None)
            fits = row.system not in mine and ours and row.runs and row.median()
            ratios.append(f"{ours.median() / row.median():.2f}×" if fits else "")
        shown = summary(row.runs, row.unit, row.digits) if row.runs else "not measured"
        print(f"| {row.what} | {row.system} | {shown} | " + " | ".join(ratios) + " |")
    sys.stdout.flush()


def attempt(rows: list[Row], system: str, run: Callable[[], None]) -> None:
    """Run one measurement; a peer that cannot run is reported, not fatal to the rest."""
    try:
        run()
    except Exception as exc:
        print(f"  ! {system}: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(limit=3, file=sys.stderr)


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


def console_pages(runs: int, database_url: str, redis_url: str) -> None:
    rows: dict[str, Row] = {}
    for _ in range(runs):
        for what, value in console.run(database_url, CONSOLE_QUEUES).items():
            rows.setdefault(what, Row(what, "drip", unit="ms", digits=1)).runs.append(value)
    table(f"8. Console with {CONSOLE_QUEUES:,} queues (sequential requests over loopback)", list(rows.values()))


SCENARIOS: dict[str, Callable[[int, str, str], None]] = {
    "webhook": webhook, "ordered": ordered, "hot": hot, "latency": latency, "scheduler": scheduling,
    "idle": idle, "memory": memory, "console": console_pages,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(SCENARIOS),
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

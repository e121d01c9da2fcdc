"""Issue 3's figures: promotion lag at a steady 200 scheduled messages/s, and the time
to promote 100,000 messages that fall due at once.

    .venv/bin/python -m bench.scheduler [--runs 3] [--seconds 15]

Lag: drip's processes (pool 2 x 4) run; a paced loop posts one message every
5 ms to POST /enqueue over HTTP with `delay` 1 s, spread over 100 queues; the
handler records (its start time - run_at). Burst: 100,000 messages over 1,000
queues are stored with one run_at a few seconds ahead; once it passes,
promote_due runs in this process and is timed. Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

from bench.harness import bench_database, drip_processes
from bench.stats import percentile
from drip.core import settings as config
from drip.core.keys import Keys
from drip.core.messages import Inbound, new_id
from drip.core.timing import Timing
from drip.store.stores import Store
from drip.work import scheduler
from tests import rawhttp
from tests.helpers import delete_prefix, wait_for


async def paced_posts(url: str, rate: float, seconds: float, queues: int) -> int:
    """Post at a constant rate (not a closed loop): request i is sent at start + i / rate."""
    sent = 0
    async with rawhttp.pool(url, 16) as connections:
        start = time.perf_counter()
        tasks = []
        while (due := start + sent / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = {"queue": f"lag{sent % queues}", "payload": {"n": sent}, "delay": 1}
            tasks.append(asyncio.create_task(rawhttp.post_json(connections, "/enqueue", body)))
            sent += 1
        for status, _ in await asyncio.gather(*tasks):
            assert status == 202
    return sent


def lag_run(database_url: str, seconds: float) -> tuple[float, float]:
    with drip_processes(database_url, "bench.handlers:lag") as running:
        sent = asyncio.run(paced_posts(running.cluster.web_url, 200, seconds, 100))
        wait_for(lambda: running.done() >= sent, 120, "every message handled")
        lags = [float(x) for x in running.client.lrange(f"{running.prefix}:bench:lag", 0, -1)]
        return percentile(lags, 0.5), percentile(lags, 0.99)


def burst_run(messages: int, queues: int) -> float:
    """Store `messages` due at one instant, wait for it, and time promote_due moving them all."""
    prefix = f"bench{secrets.token_hex(3)}"
    store = Store.from_settings(config.load(prefix=prefix))
    try:
        due_at = store.redis_now_ms() + 20_000  # room to store the burst before it falls due
        for start in range(0, messages, 1000):
            store.queues.enqueue([Inbound(new_id(), f"burst{i % queues}", b'{"n":1}', Timing("at", due_at))
                           for i in range(start, start + 1000)])
        waiting = sum(store.client.zcard(store.keys.delayed(f"burst{q}")) for q in range(queues))
        if waiting != messages:
            raise SystemExit(f"only {waiting} of {messages} were stored before they fell due; raise the margin")
        wait_for(lambda: store.redis_now_ms() >= due_at, 60, "the burst's run_at")
        started = time.perf_counter()
        moved = scheduler.promote_due(store.queues)
        elapsed = time.perf_counter() - started
        assert moved == messages, moved
        return elapsed
    finally:
        delete_prefix(store.client, Keys(prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    with bench_database() as database_url:
        lags = [lag_run(database_url, args.seconds) for _ in range(args.runs)]
        p50s, p99s = [p50 for p50, _ in lags], [p99 for _, p99 in lags]
        print(f"promotion lag at 200 scheduled msgs/s over 100 queues ({args.seconds:.0f} s): "
              f"p50 median {statistics.median(p50s):.1f} ms (runs {', '.join(f'{x:.1f}' for x in p50s)}), "
              f"p99 median {statistics.median(p99s):.1f} ms (runs {', '.join(f'{x:.1f}' for x in p99s)})")
        bursts = [burst_run(100_000, 1000) for _ in range(args.runs)]
        print(f"promote 100,000 due at once over 1,000 queues: median {statistics.median(bursts):.2f} s "
              f"(runs {', '.join(f'{x:.2f}' for x in bursts)})")


if __name__ == "__main__":
    main()

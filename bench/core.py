"""Issue 2's figures: the 200 queues × 50 messages run over HTTP, and the webhook's latency under load.

    .venv/bin/python -m bench.core [--runs 3]

Starts its own drip processes (pool 2 × 4, prefix and database of its own, log
level warning), posts 200 queues × 50 messages concurrently over HTTP (each
queue's messages in sequence), and measures from the first post to the last
message handled. Then runs wrk (Debian package `wrk`) against POST /enqueue.
Prints medians and ranges; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.harness import bench_database, drip_processes
from drip.core import settings as config
from drip.core.keys import Keys
from tests.helpers import Cluster, delete_prefix, wait_for
from tests.test_pipeline import post_queues

QUEUES, PER_QUEUE = 200, 50


def one_run(database_url: str) -> float:
    with drip_processes(database_url, "bench.handlers:count") as running:
        started = time.perf_counter()
        asyncio.run(post_queues(running.cluster.web_url, QUEUES, PER_QUEUE))
        total = QUEUES * PER_QUEUE
        wait_for(lambda: running.done() >= total, 300, "every message handled")
        return total / (time.perf_counter() - started)


def webhook_latency(database_url: str, seconds: int, connections: int) -> str:
    if not shutil.which("wrk"):
        return "wrk not installed (apt-get install wrk): webhook latency skipped"
    prefix = f"bench{secrets.token_hex(3)}"
    settings = config.load(prefix=prefix, database_url=database_url)
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.body = \'{"queue":"q","payload":{"n":1}}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    cluster = Cluster(settings, folder)
    url = cluster.start_web(DRIP_LOG_LEVEL="warning")
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url + "/enqueue"],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        cluster.stop()
        delete_prefix(redis.Redis.from_url(settings.redis_url), Keys(prefix))
        shutil.rmtree(folder, ignore_errors=True)
    lines = [line.strip() for line in out.splitlines()]
    pick = [line for line in lines if line.startswith(("50%", "99%", "Requests/sec"))]
    return f"wrk -t2 -c{connections} -d{seconds}s POST /enqueue: " + "; ".join(pick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with bench_database() as database_url:
        rates = [one_run(database_url) for _ in range(args.runs)]
        print(f"200 x 50 over HTTP, pool 2 x 4: median {statistics.median(rates):,.0f} msgs/s "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f}, {args.runs} runs)")
        for connections in (10, 50):
            print(webhook_latency(database_url, 10, connections))


if __name__ == "__main__":
    main()

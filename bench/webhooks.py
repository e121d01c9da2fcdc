"""Issue 5's figure: latency of POST /hooks/whatsapp with signature checking on, at a fixed rate.

    .venv/bin/python -m bench.webhooks [--rate 500] [--seconds 10] [--runs 3]

Starts `drip web` alone (prefix of its own, log level warning, DRIP_WHATSAPP_APP_SECRET set)
and sends signed one-message notifications at a constant rate (request i is due at
start + i/rate; latency counts from that due time, so a client falling behind shows up
instead of hiding), each a new conversation message. Prints p50/p99 medians.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import redis

from bench.stats import percentile
from drip.core import settings as config
from drip.core.keys import Keys
from tests import rawhttp
from tests.helpers import Cluster, delete_prefix
from tests.whatsapp_payloads import message, notification, sign

SECRET = "bench-app-secret"


async def paced(url: str, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with rawhttp.pool(url, 32) as connections:
        start = time.perf_counter()

        async def one(i: int, due: float) -> None:
            body = notification(messages=[message(f"5215{i % 1000:06d}", f"wamid.{i}.{secrets.token_hex(4)}", "hi")])
            status, _ = await rawhttp.post_raw(connections, "/hooks/whatsapp", body,
                                               {"X-Hub-Signature-256": sign(SECRET, body)})
            assert status == 200
            latencies.append((time.perf_counter() - due) * 1000)

        tasks, i = [], 0
        while (due := start + i / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i, due)))
            i += 1
        await asyncio.gather(*tasks)
    return latencies



def one_run(rate: float, seconds: float) -> tuple[float, float]:
    prefix = f"bench{secrets.token_hex(3)}"
    settings = config.load(prefix=prefix)
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    cluster = Cluster(settings, folder)
    try:
        url = cluster.start_web(DRIP_LOG_LEVEL="warning", DRIP_WHATSAPP_APP_SECRET=SECRET)
        latencies = asyncio.run(paced(url, rate, seconds))
        return percentile(latencies, 0.5), percentile(latencies, 0.99)
    finally:
        cluster.stop()
        delete_prefix(redis.Redis.from_url(settings.redis_url), Keys(prefix))
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.rate, args.seconds) for _ in range(args.runs)]
    p50s, p99s = [a for a, _ in runs], [b for _, b in runs]
    print(f"POST /hooks/whatsapp, signed, {args.rate:.0f} req/s for {args.seconds:.0f} s: "
          f"p50 median {statistics.median(p50s):.2f} ms (runs {', '.join(f'{x:.2f}' for x in p50s)}), "
          f"p99 median {statistics.median(p99s):.2f} ms (runs {', '.join(f'{x:.2f}' for x in p99s)})")


if __name__ == "__main__":
    main()

"""HTTP load for the webhook scenario: wrk for the most requests per second (a closed loop), and a
constant-rate generator for latency at a fixed rate (request i is sent at start + i/rate and its
latency counts from then, so a server falling behind shows up instead of slowing the client)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.peers import Target
from bench.stats import percentile
from tests import rawhttp


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages if missing and we may (root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    return found


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_max(target: Target, seconds: int = 10, connections: int = 50) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of `wrk -t2 -c<connections>` POSTing the target's body."""
    with tempfile.TemporaryDirectory(prefix="drip-bench-") as folder:
        script = Path(folder) / "post.lua"
        body = target.body.decode().replace("\\", "\\\\").replace('"', '\\"')
        script.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                          'wrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(
            [ensure_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
             target.url + target.path],
            capture_output=True, text=True, check=True,
        ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"the server answered errors under wrk:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return rate, p50, p99


async def _paced(target: Target, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with rawhttp.pool(target.url, 64) as connections:
        start = time.perf_counter()

        async def one(due: float) -> None:
            status, answer = await rawhttp.post_raw(connections, target.path, target.body)
            if status >= 300:
                raise RuntimeError(f"{target.url}{target.path} answered {status}: {answer}")
            latencies.append((time.perf_counter() - due) * 1000)

        tasks, i = [], 0
        while (due := start + i / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
            i += 1
        await asyncio.gather(*tasks)
    return latencies


def paced(target: Target, rate: float, seconds: float) -> tuple[float, float]:
    """(p50 ms, p99 ms) at a constant `rate` of requests per second for `seconds`."""
    latencies = asyncio.run(_paced(target, rate, seconds))
    return percentile(latencies, 0.5), percentile(latencies, 0.99)

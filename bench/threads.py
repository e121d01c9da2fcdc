"""What concurrency through threads costs a Python process: a drain's Redis traffic per message, alone.

    .venv/bin/python -m bench.threads [--messages 20000] [--runs 3]

Each message is what a drain with bench's INCR handler sends: one INCR waited for (the
handler's), then one push sent without waiting for its reply (the mark; replies read 16 at a
time). Run through 1, 2, 4 and 8 threads of one process (redis-py, as drip's drains are), through
8 processes of one thread, and through 8 tasks on one asyncio loop (redis.asyncio). Prints msgs/s,
CPU µs per message (user + system, every process summed) and context switches per message. It
tells the GIL's hand-offs from Python's own work: the same commands cost more CPU per message as
threads are added. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import secrets
import statistics
import threading
import time

import redis
import redis.asyncio as aredis

from drip.core import settings as config

_REPLIES_AT = 16


def _usage() -> tuple[float, int]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime, used.ru_nvcsw + used.ru_nivcsw


def _sync_drain(url: str, prefix: str, count: int) -> None:
    handler, own = redis.Redis.from_url(url), redis.Redis.from_url(url)
    marks = own.connection_pool.get_connection()
    unread = 0
    for _ in range(count):
        handler.incr(f"{prefix}:done")
        marks.send_command("RPUSH", f"{prefix}:marks", b"x" * 60)
        unread += 1
        if unread == _REPLIES_AT:
            for _ in range(unread):
                marks.read_response()
            unread = 0
    for _ in range(unread):
        marks.read_response()


async def _async_drain(url: str, prefix: str, count: int) -> None:
    handler, own = aredis.Redis.from_url(url), aredis.Redis.from_url(url)
    marks = await own.connection_pool.get_connection()
    unread = 0
    for _ in range(count):
        await handler.incr(f"{prefix}:done")
        await marks.send_command("RPUSH", f"{prefix}:marks", b"x" * 60)
        unread += 1
        if unread == _REPLIES_AT:
            for _ in range(unread):
                await marks.read_response()
            unread = 0
    for _ in range(unread):
        await marks.read_response()
    await handler.aclose()
    await own.aclose()


def _threads(url: str, prefix: str, messages: int, threads: int, result) -> None:
    """In a process of its own, so its usage is the threads' alone; puts (CPU s, switches) in `result`."""
    start = _usage()
    drains = [threading.Thread(target=_sync_drain, args=(url, prefix, messages // threads)) for _ in range(threads)]
    for drain in drains:
        drain.start()
    for drain in drains:
        drain.join()
    end = _usage()
    result.put((end[0] - start[0], end[1] - start[1]))


def _loop(url: str, prefix: str, messages: int, tasks: int, result) -> None:
    async def all_tasks() -> None:
        await asyncio.gather(*(_async_drain(url, prefix, messages // tasks) for _ in range(tasks)))

    start = _usage()
    asyncio.run(all_tasks())
    end = _usage()
    result.put((end[0] - start[0], end[1] - start[1]))


def _run(target, url: str, messages: int, processes: int, width: int) -> tuple[float, float, float]:
    """(msgs/s, CPU µs per message, switches per message) of `processes` processes running `target`."""
    prefix = f"benchthreads{secrets.token_hex(3)}"
    result = multiprocessing.Queue()
    children = [multiprocessing.Process(target=target, args=(url, prefix, messages // processes, width, result))
                for _ in range(processes)]
    started = time.perf_counter()
    for child in children:
        child.start()
    used = [result.get() for _ in children]
    elapsed = time.perf_counter() - started
    for child in children:
        child.join()
    client = redis.Redis.from_url(url)
    client.delete(f"{prefix}:done", f"{prefix}:marks")
    return (messages / elapsed, sum(cpu for cpu, _ in used) / messages * 1e6,
            sum(switches for _, switches in used) / messages)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.threads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = config.load().redis_url
    setups = {f"1 process, {n} thread{'s' if n > 1 else ''}": (_threads, 1, n) for n in (1, 2, 4, 8)}
    setups["8 processes, 1 thread each"] = (_threads, 8, 1)
    setups["1 process, 8 tasks on one asyncio loop"] = (_loop, 1, 8)
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in setups}
    for _ in range(args.runs):  # setups alternate, so a noisy minute hurts them alike
        for name, (target, processes, width) in setups.items():
            figures[name].append(_run(target, url, args.messages, processes, width))
    print("| setup | msgs/s | CPU µs / msg | context switches / msg |\n| --- | --- | --- | --- |")
    for name, runs in figures.items():
        rate, cpu, switches = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"| {name} | {rate:,.0f} | {cpu:.1f} | {switches:.2f} |")


if __name__ == "__main__":
    main()

"""Where an end-to-end message's cost goes (issue 16's profile, one command instead of throwaway harnesses).

    .venv/bin/python -m bench.profile [--runs 3] [--processes 2] [--threads 8] [--log-level info]
                                      [--handler bench.handlers:count]

Runs the e2e scenario (bench.user: 20,000 messages over 1,000 queues POSTed as arrays of 500,
the day's defaults unless told) and prints per run: msgs/s; CPU per message (user + system,
system alone) and context switches per message of each kind of process (the worker pool's
processes summed over their threads, read from /proc: psutil counts the main thread only);
and Redis's own time per message by script (SLOWLOG with every call logged for the run, its
settings put back after). Commands a script runs are logged too, and their time is inside the
script's: read the script rows first. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import psutil

from bench.drip_runs import POOL
from bench.harness import Running, bench_database, drip_processes
from bench.user import E2E, post_and_wait
from drip.store.scripts import script_named


@dataclass
class Usage:
    cpu_s: float = 0.0
    system_s: float = 0.0
    switches: int = 0

    def add(self, after: Usage, before: Usage) -> None:
        """Add what one process used between two readings."""
        self.cpu_s += after.cpu_s - before.cpu_s
        self.system_s += after.system_s - before.system_s
        self.switches += after.switches - before.switches


def _switches(pid: int) -> int:
    """Context switches of every thread of `pid` (voluntary and not)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                total += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        except OSError:
            continue  # the thread ended meanwhile
    return total


def _processes(running: Running) -> dict[int, str]:
    """pid → kind: drip's processes (the pool's children are workers, the supervisor's the recorder),
    Redis (the server the run uses) and PostgreSQL (all of its processes: the history's rows; a backend
    that starts during the run is counted from its start)."""
    kinds = {}
    for name, child in running.cluster.children.items():
        parent = psutil.Process(child.pid)
        kinds[parent.pid] = name if name != "worker" else "pool"
        for sub in parent.children(recursive=True):
            kinds[sub.pid] = {"worker": "worker", "supervisor": "recorder"}.get(name, name)
    kinds[int(running.client.info("server")["process_id"])] = "redis"
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            kinds[process.pid] = "postgresql"
    return kinds


def _usage(kinds: dict[int, str]) -> dict[int, Usage]:
    found = {}
    for pid in kinds:
        try:
            times = psutil.Process(pid).cpu_times()
            found[pid] = Usage(times.user + times.system, times.system, _switches(pid))
        except (psutil.Error, OSError):
            continue  # gone: a PostgreSQL backend that ended, say
    return found


def _script_names() -> dict[str, str]:
    folder = resources.files("drip.store").joinpath("lua")
    names = (entry.name.removesuffix(".lua") for entry in folder.iterdir() if entry.name.endswith(".lua"))
    return {script_named(name).sha: name for name in names if name != "prelude"}


def _redis_by_script(entries: list) -> tuple[Counter, Counter]:
    """(µs, calls) per script name (EVALSHA) or command, from SLOWLOG GET's raw entries."""
    names = _script_names()
    micros, calls = Counter(), Counter()
    for entry in entries:
        args = entry[3]
        command = args[0].decode().lower()
        name = f"{names.get(args[1].decode(), 'unknown')}.lua" if command == "evalsha" else command
        micros[name] += entry[2]
        calls[name] += 1
    return micros, calls


def profile_once(database_url: str, handler: str, log_level: str, processes: int, threads: int) -> None:
    queues, per_queue, array = E2E
    count = queues * per_queue
    with drip_processes(database_url, handler, log_level=log_level, processes=processes, threads=threads) as running:
        client = running.client
        kept = {name: client.config_get(name)[name] for name in ("slowlog-log-slower-than", "slowlog-max-len")}
        kinds = _processes(running)
        client.config_set("slowlog-max-len", count * 30)
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        before = _usage(kinds)
        try:
            rate = post_and_wait(running.cluster.web_url, running.done, queues, per_queue, array)
            entries = client.execute_command("SLOWLOG", "GET", "-1")
            kinds = _processes(running)
            after = _usage(kinds)
        finally:
            client.config_set("slowlog-log-slower-than", kept["slowlog-log-slower-than"])
            client.slowlog_reset()
            client.config_set("slowlog-max-len", kept["slowlog-max-len"])
    per_kind: dict[str, Usage] = {}
    for pid, used in after.items():
        per_kind.setdefault(kinds[pid], Usage()).add(used, before.get(pid, Usage()))
    print(f"\n{rate:,.0f} msgs/s ({processes} × {threads} drains, {handler}, logs at {log_level})")
    print("| process | CPU µs / msg | of it system | context switches / msg |\n| --- | --- | --- | --- |")
    for kind, used in sorted(per_kind.items(), key=lambda item: -item[1].cpu_s):
        print(f"| {kind} | {used.cpu_s / count * 1e6:.1f} | {used.system_s / count * 1e6:.1f} "
              f"| {used.switches / count:.2f} |")
    micros, calls = _redis_by_script(entries)
    print("| Redis: script or command | µs / msg | calls / msg | µs / call |\n| --- | --- | --- | --- |")
    for name, spent in micros.most_common(12):
        print(f"| {name} | {spent / count:.1f} | {calls[name] / count:.3f} | {spent / calls[name]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--processes", type=int, default=POOL["processes"])
    parser.add_argument("--threads", type=int, default=POOL["threads"])
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--handler", default="bench.handlers:count")
    args = parser.parse_args()
    with bench_database() as database_url:
        for _ in range(args.runs):
            profile_once(database_url, args.handler, args.log_level, args.processes, args.threads)


if __name__ == "__main__":
    main()

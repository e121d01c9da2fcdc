"""Scenarios as a user runs drip, not its processing path alone.

- e2e: the day's defaults (strict acks, info logs written to files, history recorded in
  PostgreSQL), 20,000 messages over 1,000 queues POSTed to `drip web` as arrays of 500, a
  handler doing one Redis INCR; timed from the first POST to the last INCR. Beside it, in
  the same invocation: drip's processing path alone with the same handler and defaults (the
  messages stored in-process: the ceiling of the e2e figure); dramatiq plain's processing-only
  figure (no HTTP, no order, the same INCR, its producer in-process), a peer's best case, so
  that ratio is a floor; and the seed's Express webhook + BullMQ worker (concurrency 10, the
  same INCR) sent the same arrays, timed the same way.
- fairness: one queue draining a 100,000-message backlog while 100 other queues get 200
  msgs/s; the light queues' enqueue → handler-start lag beside the hot queue and without
  it, and the hot queue's rate beside the light traffic (while it has messages: the backlog
  is topped up to 100,000 after its solo window) and alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import httpx

from bench.drip_runs import BATCH, POOL, drain_rate
from bench.harness import Running, drip_processes
from bench.peers import bullmq, dramatiq_plain
from bench.report import Row, attempt, table
from bench.stats import percentile
from drip.core.messages import Inbound, new_id
from tests.helpers import free_port, wait_for

E2E = (1000, 20, 500)  # queues, per queue, messages per POST
LIGHT_QUEUES, LIGHT_RATE, WINDOW_S = 100, 200.0, 10.0
HOT_ALONE_S = 5.0  # the hot queue's solo window, before the light traffic starts
HOT_BACKLOG = 100_000


def post_and_wait(url: str, done: Callable[[], int], queues: int, per_queue: int, array: int) -> float:
    """msgs/s from the first POST (arrays of `array` messages to url/enqueue, one request at a time) to the
    last handled (`done` counts them)."""
    bodies = [[{"queue": f"e{(n * array + i) % queues}", "payload": {"n": n * array + i}}
               for i in range(array)] for n in range(queues * per_queue // array)]
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as http:
        for body in bodies:
            http.post("/enqueue", json=body).raise_for_status()
    wait_for(lambda: done() >= queues * per_queue, 600, "every message handled")
    return queues * per_queue / (time.perf_counter() - started)


def posted_and_handled(database_url: str, queues: int, per_queue: int, array: int) -> float:
    """drip with its defaults (info logs, history on), HTTP in, an INCR handler."""
    with drip_processes(database_url, "bench.handlers:count", log_level="info", **POOL) as running:
        return post_and_wait(running.cluster.web_url, running.done, queues, per_queue, array)


def stored_and_handled(database_url: str, queues: int, per_queue: int) -> float:
    """drip's processing path alone with the same defaults and INCR handler: the messages stored in-process
    (no HTTP, no web process), timed as the ordered scenario times it (bench.drip_runs.drain_rate). What the
    workers, Redis and the recorder can do beside this handler: a ceiling for the e2e figure."""
    with drip_processes(database_url, "bench.handlers:count", web=False, log_level="info", **POOL) as running:
        return drain_rate(running, queues, per_queue)


def bullmq_posted_and_handled(redis_url: str, queues: int, per_queue: int, array: int) -> float:
    """The seed's Express webhook and BullMQ worker (concurrency 10, an INCR per job), the same posts."""
    with bullmq.webhook_and_worker(free_port(), redis_url) as (url, done):
        return post_and_wait(url, done, queues, per_queue, array)


def end_to_end(runs: int, database_url: str, redis_url: str) -> None:
    queues, per_queue, array = E2E
    what = f"{queues * per_queue:,} messages over {queues:,} queues, first in → last handled: msgs/s"
    rows = {
        "drip": Row(what, f"drip (HTTP arrays of {array}, INCR handler, info logs, history on)", unit="msgs/s"),
        "stored": Row(what, "drip's processing path alone (stored in-process, no HTTP; INCR handler, info logs, "
                            "history on): e2e's ceiling", unit="msgs/s"),
        "dramatiq": Row(what, "dramatiq plain (no order; in-process producer, INCR handler, no HTTP)", unit="msgs/s"),
        "bullmq": Row(what, f"Express + BullMQ, the seed's (no order; HTTP arrays of {array}, addBulk, worker "
                            "concurrency 10, INCR handler, a line per job)", unit="msgs/s"),
    }
    bullmq.ensure_installed()
    for _ in range(runs):
        attempt(list(rows.values()), "drip",
                lambda: rows["drip"].runs.append(posted_and_handled(database_url, queues, per_queue, array)))
        attempt(list(rows.values()), "drip stored", lambda:
                rows["stored"].runs.append(stored_and_handled(database_url, queues, per_queue)))
        attempt(list(rows.values()), "dramatiq plain", lambda: rows["dramatiq"].runs.append(
            dramatiq_plain.throughput(queues, per_queue, redis_url, database_url, work="incr")))
        attempt(list(rows.values()), "Express + BullMQ", lambda: rows["bullmq"].runs.append(
            bullmq_posted_and_handled(redis_url, queues, per_queue, array)))
    table("9. End to end: HTTP in, the defaults of the day", list(rows.values()))


def _light_traffic(running: Running, hot_total: int = 0) -> tuple[float, float, float]:
    """LIGHT_RATE msgs/s over LIGHT_QUEUES for WINDOW_S (constant rate); (p50 ms, p99 ms, the hot queue's
    msgs/s meanwhile). The hot queue's rate is taken while it still had messages (of `hot_total` stored
    in all): once it runs dry its count stops, and the rest of the window would only dilute it."""
    store = running.store()
    hot = f"{running.prefix}:bench:hot"
    hot_before = int(running.client.get(hot) or 0)
    start, sent, sampled = time.perf_counter(), 0, 0.0
    busy = (start, hot_before)  # the last sample at which the hot queue still had messages
    while (due := start + sent / LIGHT_RATE) < start + WINDOW_S:
        time.sleep(max(0.0, due - time.perf_counter()))
        store.queues.enqueue([Inbound(new_id(), f"light{sent % LIGHT_QUEUES}", b'{"n":1}')])
        sent += 1
        if hot_total and (now := time.perf_counter()) - sampled >= 0.1:
            sampled, count = now, int(running.client.get(hot) or 0)
            if count < hot_total:
                busy = (now, count)
    wait_for(lambda: running.done() >= sent, 120, "every light message handled")
    lags = [float(x) for x in running.client.lrange(f"{running.prefix}:bench:lag", 0, -1)]
    rate = (busy[1] - hot_before) / (busy[0] - start) if busy[0] > start else 0.0
    return percentile(lags, 0.5), percentile(lags, 0.99), rate


def _hot_backlog(running: Running, count: int = HOT_BACKLOG) -> int:
    """Store `count` messages (whole batches) on the hot queue; how many were stored."""
    store = running.store()
    batches = -(-count // BATCH)
    for _ in range(batches):
        store.queues.enqueue([Inbound(new_id(), "hot", b'{"n":1}') for _ in range(BATCH)])
    return batches * BATCH


def _hot_alone(running: Running) -> tuple[float, int]:
    """The hot queue's msgs/s over HOT_ALONE_S with nothing else going on, and its count at the end."""
    before = int(running.client.get(f"{running.prefix}:bench:hot") or 0)
    time.sleep(HOT_ALONE_S)  # a bench measures a rate over a window; nothing is waited for here
    after = int(running.client.get(f"{running.prefix}:bench:hot") or 0)
    return (after - before) / HOT_ALONE_S, after


def fairness(runs: int, database_url: str, redis_url: str) -> None:
    what = f"{LIGHT_QUEUES} queues at {LIGHT_RATE:.0f} msgs/s, enqueue → handler start"
    rows = {k: Row(f"{what} {k}", "drip", unit="ms", digits=1) for k in
            ("p50 alone", "p50 beside a hot queue", "p99 alone", "p99 beside a hot queue")}
    rows["hot"] = Row(f"hot queue ({HOT_BACKLOG:,} backlog) rate beside the light traffic ÷ alone", "drip",
                      digits=2)

    def one() -> None:
        with drip_processes(database_url, "bench.handlers:lag_of_light", web=False, **POOL) as running:
            p50, p99, _ = _light_traffic(running)
        with drip_processes(database_url, "bench.handlers:lag_of_light", web=False, **POOL) as running:
            stored = _hot_backlog(running)
            alone, handled = _hot_alone(running)
            stored += _hot_backlog(running, handled)  # the backlog back to HOT_BACKLOG for the light window
            hot_p50, hot_p99, beside = _light_traffic(running, stored)
            if int(running.client.get(f"{running.prefix}:bench:hot") or 0) >= stored:
                print("  ! the hot queue ran dry within the light window: its rate is taken until then",
                      file=sys.stderr)
        rows["p50 alone"].runs.append(p50)
        rows["p99 alone"].runs.append(p99)
        rows["p50 beside a hot queue"].runs.append(hot_p50)
        rows["p99 beside a hot queue"].runs.append(hot_p99)
        rows["hot"].runs.append(beside / alone)

    for _ in range(runs):
        attempt(list(rows.values()), "drip", one)
    table("10. Fairness under a hot queue", list(rows.values()))

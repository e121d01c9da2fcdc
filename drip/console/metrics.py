"""/metrics: the deployment's counters and histograms from Redis (every process of every host adds its
counts there, drip.store.tallies) and gauges read from Redis at scrape time, a few commands per shard.
Ready messages are a sum over the queues in line, so a background thread refreshes that one gauge shard
by shard while scrapes come (and idles when none do), and a scrape stays cheap with 100,000 queues."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from drip.core import logs
from drip.core.keys import SHARDS
from drip.store import browse, tallies
from drip.store.connection import REDIS_DOWN
from drip.store.stores import Store

#: Counter families and their labels, as the issue names them (a family with no count yet still shows).
COUNTERS = {
    "drip_messages_accepted": ("Messages stored by the webhook, by source", ("source",)),
    "drip_messages_handled": ("Messages whose handling ended, by route pattern and outcome", ("route", "outcome")),
    "drip_leases_reclaimed": ("Expired leases the supervisor reclaimed", ()),
    "drip_webhook_requests": ("Webhook requests answered, by endpoint and status code", ("endpoint", "code")),
}
HISTOGRAMS = {
    "drip_handler_duration_seconds": ("Handler run time, by route pattern", ("route",)),
    "drip_lag_seconds": ("Handler start minus run_at, by route pattern", ("route",)),
}
#: How often ready messages are summed (O(queues in line)), while /metrics is being scraped: one shard
#: at a time, so no refresh holds Redis or this process for long.
READY_REFRESH_S = 16.0
#: The sum stops being refreshed when no scrape came for this long (no scraper, no cost).
READY_IDLE_S = 120.0

log = logs.get("drip.console")


class DripCollector:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._ready = [0] * SHARDS  # per shard, refreshed one shard at a time
        self._stop = threading.Event()
        self._scraped = threading.Event()  # set by a scrape; the refresher sleeps while nobody scrapes
        self._last_scrape = 0.0

    def refresh_ready(self, shard: int) -> None:
        """One shard's ready messages: stream lengths and replay lists of its queues in line or held."""
        s = self.store
        pipe = s.client.pipeline(transaction=False)
        pipe.zrange(s.keys.ready(shard), 0, -1)
        pipe.zrange(s.keys.leases(shard), 0, -1)
        queues = {q.decode() for rows in pipe.execute() for q in rows}
        pipe = s.client.pipeline(transaction=False)
        for queue in queues:
            pipe.xlen(s.keys.stream(queue))
            pipe.llen(s.keys.replays(queue))
        self._ready[shard] = sum(pipe.execute()) if queues else 0

    @property
    def ready(self) -> int:
        return sum(self._ready)

    def start(self) -> None:
        def run() -> None:
            shard = 0
            while not self._stop.is_set():
                if time.monotonic() - self._last_scrape > READY_IDLE_S:
                    self._scraped.clear()
                    self._scraped.wait()
                    continue
                try:
                    self.refresh_ready(shard)
                except REDIS_DOWN as exc:  # the last figure stands until Redis is back
                    log.warning("redis_unavailable", during="metrics refresh", error=str(exc))
                shard = (shard + 1) % SHARDS
                self._stop.wait(READY_REFRESH_S / SHARDS)

        threading.Thread(target=run, name="drip-metrics-ready", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._scraped.set()

    def collect(self):
        self._last_scrape = time.monotonic()
        self._scraped.set()
        counts = tallies.read(self.store.client, self.store.keys)
        totals = browse.totals(self.store.client, self.store.keys)
        yield from _counters(counts)
        yield from _histograms(counts)
        queues = GaugeMetricFamily("drip_queues", "Queues with messages, by state", labels=["state"])
        for state in ("in_line", "held", "retrying", "deferred", "paused"):
            queues.add_metric([state], totals[state])
        yield queues
        messages = GaugeMetricFamily("drip_messages", "Messages by state", labels=["state"])
        messages.add_metric(["ready"], self.ready)
        messages.add_metric(["scheduled"], totals["scheduled"])
        messages.add_metric(["dead"], totals["dead_letters"])
        yield messages
        yield GaugeMetricFamily("drip_busy_threads", "Worker threads running a drain", value=totals["busy_threads"])
        yield GaugeMetricFamily("drip_workers", "Live worker processes", value=totals["workers"])
        yield GaugeMetricFamily("drip_recorder_backlog", "History events not yet in PostgreSQL",
                                value=totals["recorder_backlog"])
        yield GaugeMetricFamily("drip_leader", "1 while a supervisor leads", value=1 if totals["leader"] else 0)


def _counters(counts: dict[str, float]):
    by_family: dict[str, list] = defaultdict(list)
    for name, value in counts.items():
        family, labels = tallies.parse_field(name)
        by_family[family].append((labels, value))
    for family, (text, labels) in COUNTERS.items():
        metric = CounterMetricFamily(family, text, labels=list(labels))
        for found, value in by_family.get(family + "_total", []):
            metric.add_metric([found.get(label, "") for label in labels], value)
        yield metric


def _histograms(counts: dict[str, float]):
    for family, (text, labels) in HISTOGRAMS.items():
        series: dict[tuple, dict] = defaultdict(lambda: {"buckets": defaultdict(float), "sum": 0.0})
        for name, value in counts.items():
            kind, found = tallies.parse_field(name)
            if not kind.startswith(family + "_"):
                continue
            key = tuple(found.get(label, "") for label in labels)
            if kind == family + "_bucket":
                series[key]["buckets"][found["le"]] += value
            elif kind == family + "_sum":
                series[key]["sum"] = value
        metric = HistogramMetricFamily(family, text, labels=list(labels))
        for key, data in sorted(series.items()):
            cumulative, running = [], 0.0
            for bound in (*map(str, tallies.BUCKETS), "+Inf"):
                running += data["buckets"].get(bound, 0.0)
                cumulative.append((bound, running))
            metric.add_metric(list(key), cumulative, data["sum"])
        yield metric


def registry_for(store: Store) -> tuple[CollectorRegistry, DripCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = DripCollector(store)
    registry.register(collector)
    return registry, collector


async def metrics_endpoint(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)


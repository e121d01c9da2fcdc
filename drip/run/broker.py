"""dramatiq's broker for drain grants, with a doorbell so an idle pool reacts at once.

dramatiq's Redis consumer polls: with nothing to do it sleeps with growing
backoff (up to its worker timeout) before asking again, so a grant could wait
~100 ms-1 s for a thread that is free. Here an idle consumer that has free
threads blocks on a doorbell list instead, and every batch of grants rings it
(one token per grant): the wait between a grant and its drain starting is a
Redis round trip. A ring nobody hears is harmless (tokens are capped and a
consumer that finds nothing just waits again); a lost one costs at most the
worker timeout. RabbitMQ pushes by itself and needs none of this.

This subclasses dramatiq's private Redis consumer, so dramatiq is pinned; the
suite's pipeline tests fail if its internals move.
"""

from __future__ import annotations

import threading

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed

from drip.core.errors import ConfigError
from drip.core.keys import Keys
from drip.core.settings import Settings

#: Tokens kept at most on the doorbell (rings nobody heard, while every thread was busy).
_MAX_TOKENS = 1024
#: How often a consumer whose threads are all busy looks again (no Redis I/O involved).
_BUSY_WAIT_S = 0.002
_NEVER = threading.Event()


class DoorbellRedisBroker(RedisBroker):
    """RedisBroker whose consumers of drip's queues wait on a doorbell instead of polling."""

    def __init__(self, *, url: str, namespace: str, doorbells: dict[str, str], prefetch: dict[str, int]) -> None:
        super().__init__(url=url, namespace=namespace, middleware=[])
        self.doorbells = doorbells
        self.prefetch = prefetch

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        if queue_name in self.doorbells:
            prefetch = self.prefetch.get(queue_name, prefetch)
            return _DoorbellConsumer(self, queue_name, prefetch, timeout, self.doorbells[queue_name])
        return super().consume(queue_name, prefetch, timeout)

    def ring(self, queue_name: str, sent: int) -> None:
        """Wake up to `sent` idle consumers of `queue_name` (after its messages are enqueued)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.doorbells[queue_name], *([1] * sent))
        pipe.ltrim(self.doorbells[queue_name], 0, _MAX_TOKENS - 1)
        pipe.execute()


class _DoorbellConsumer(_RedisConsumer):
    def __init__(self, broker: DoorbellRedisBroker, queue_name: str, prefetch: int, timeout: int, doorbell: str):
        super().__init__(broker, queue_name, prefetch, timeout)
        self.doorbell = doorbell

    def __next__(self) -> MessageProxy | None:
        try:
            if not self.message_cache:
                free = self.prefetch - self.outstanding_message_count
                if free <= 0:
                    # Every thread busy: wait for one to ack. A timed Event wait rather than time.sleep:
                    # the same here, and it works under libfaketime (the clock-skew tests), whose
                    # clock_nanosleep answers EINVAL.
                    _NEVER.wait(_BUSY_WAIT_S)
                    return None
                self.message_cache = self.broker.do_fetch(self.queue_name, free)
                if not self.message_cache:
                    self.broker.client.blpop([self.doorbell], timeout=self.timeout / 1000)
                    return None
            message = dramatiq.Message.decode(self.message_cache.pop(0))
            self.queued_message_ids.add(message.message_id)
            return MessageProxy(message)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


def queue_name(settings: Settings) -> str:
    """The dramatiq queue of drain grants; per prefix, so deployments sharing a broker stay apart."""
    return f"drains.{settings.prefix}"


def timer_queue_name(settings: Settings) -> str:
    """The dramatiq queue of timer work (promote_due): a thread per process beyond the drain slots serves it."""
    return f"timers.{settings.prefix}"


def make_broker(settings: Settings) -> dramatiq.Broker:
    """dramatiq's broker from DRIP_BROKER_URL (default: the data Redis), without dramatiq's
    retry and time-limit middleware: a drain ends by itself and is re-granted, never retried."""
    url = settings.broker
    keys = Keys(settings.prefix)
    if url.startswith(("redis://", "rediss://", "unix://")):
        drains, timers = queue_name(settings), timer_queue_name(settings)
        broker = DoorbellRedisBroker(
            url=url,
            namespace=keys.broker_namespace(),
            doorbells={drains: keys.doorbell(drains), timers: keys.doorbell(timers)},
            # A process takes no more grants than it has drain threads, and one timer job at a time.
            prefetch={drains: settings.threads, timers: 1},
        )
    elif url.startswith(("amqp://", "amqps://")):
        try:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker
        except ImportError:
            raise ConfigError("DRIP_BROKER_URL is amqp:// but pika is missing: pip install 'drip[rabbitmq]'") from None
        broker = RabbitmqBroker(url=url, middleware=[])
    else:
        raise ConfigError(f"DRIP_BROKER_URL must be redis://, rediss://, unix:// or amqp://, got {url.split(':')[0]}://")
    broker.declare_queue(queue_name(settings))
    broker.declare_queue(timer_queue_name(settings))
    return broker

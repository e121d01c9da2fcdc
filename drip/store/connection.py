"""Redis clients for drip's processes, standalone or Redis Cluster, and what "Redis is down"
looks like to their callers.

DRIP_REDIS_URL names a cluster as `redis+cluster://host:port,host:port` (any of its
nodes; `rediss+cluster://` for TLS): redis-py's RedisCluster then routes each call to
the node serving its keys' slot.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff

from drip.core.errors import ConfigError


#: Redis could not confirm that enough replicas have a write (DRIP_REDIS_MIN_REPLICAS): for callers,
#: as if Redis were down (the webhook answers 503; drains ride it out, their calls are idempotent).
class NotReplicated(redis.exceptions.ConnectionError):
    pass


#: Exceptions meaning "Redis cannot be reached right now": callers retry or answer 503. A cluster
#: says so too while a failover is on its way (CLUSTERDOWN, TRYAGAIN, no node for a slot).
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError,
              redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
              redis.exceptions.SlotNotCoveredError, redis.exceptions.MasterDownError,
              redis.exceptions.RedisClusterException)

_CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


def is_cluster(url: str) -> bool:
    return url.split("://", 1)[0] in _CLUSTER_SCHEMES


def _cluster_options(url: str) -> dict:
    """The seeds and credentials of a redis+cluster:// URL."""
    scheme, _, rest = url.partition("://")
    netloc, _, _path = rest.partition("/")
    auth, _, hosts = netloc.rpartition("@")
    seeds = []
    for host in hosts.split(","):
        parsed = urlsplit(f"//{host}")
        if not parsed.hostname:
            raise ConfigError(f"DRIP_REDIS_URL: {url!r} names no host: use redis+cluster://host:port,host:port")
        seeds.append((parsed.hostname, parsed.port or 6379))
    user, _, password = auth.partition(":") if auth else ("", "", "")
    return {"seeds": seeds, "username": user or None, "password": password or None,
            "ssl": _CLUSTER_SCHEMES[scheme]}


def redis_client(url: str, *, timeout_s: float = 5.0) -> redis.Redis | redis.RedisCluster:
    """A sync client that fails fast when Redis is down instead of hanging."""
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": min(timeout_s, 2.0)}
    if not is_cluster(url):
        return redis.Redis.from_url(url, **timeouts)
    options = _cluster_options(url)
    return redis.RedisCluster(startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in options.pop("seeds")],
                              **options, **timeouts)


def async_redis_client(url: str, *, timeout_s: float = 5.0) -> redis.asyncio.Redis | redis.asyncio.RedisCluster:
    """The webhook's client. On a cluster, redis-py retries nothing: a script whose reply was lost
    must not be run again behind the webhook's back (it would store a message twice)."""
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": min(timeout_s, 2.0)}
    if not is_cluster(url):
        return redis.asyncio.Redis.from_url(url, **timeouts)
    options = _cluster_options(url)
    return redis.asyncio.RedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in options.pop("seeds")],
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **options, **timeouts)


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers at `url` (drip dev decides on embedded servers by it)."""
    try:
        return bool(redis_client(url, timeout_s=0.5).ping())
    except REDIS_DOWN:
        return False


def redis_now_ms(client: redis.Redis | redis.RedisCluster) -> int:
    """Redis's clock, the one every time two processes must agree on is judged by (on a cluster,
    any node's: their hosts keep one time)."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def read_with_time(client: redis.Redis | redis.RedisCluster,
                   fill: Callable[[redis.client.Pipeline], object]) -> tuple[int, list]:
    """Redis's clock and the replies of the reads `fill` adds to a pipeline: one round trip on a
    standalone Redis (TIME rides in the pipeline), two on a cluster (whose pipelines take no TIME)."""
    cluster = isinstance(client, redis.RedisCluster)
    now = redis_now_ms(client) if cluster else 0
    pipe = client.pipeline(transaction=False)
    if not cluster:
        pipe.time()
    fill(pipe)
    replies = pipe.execute()
    if not cluster:
        (seconds, micros), *replies = replies
        now = seconds * 1000 + micros // 1000
    return now, replies

"""A real Redis Cluster (3 masters, 3 replicas) for this directory's tests, started once per module
and torn down after; each test has its own key prefix on it, and its own RabbitMQ queues."""

from __future__ import annotations

import pytest

from drip.core.keys import Keys
from drip.core.settings import Settings
from drip.store.connection import redis_client
from drip.store.stores import Store
from tests.helpers import delete_prefix
from tests.servers import RedisCluster

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory) -> RedisCluster:
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_settings(redis_cluster: RedisCluster, settings: Settings) -> Settings:
    """The test's settings on the cluster, the broker on RabbitMQ (dramatiq's Redis broker cannot run there)."""
    yield settings.model_copy(update={"redis_url": redis_cluster.url, "broker_url": RABBITMQ_URL})
    delete_prefix(redis_client(redis_cluster.url), Keys(settings.prefix))


@pytest.fixture
def cluster_store(cluster_settings: Settings) -> Store:
    return Store.from_settings(cluster_settings)

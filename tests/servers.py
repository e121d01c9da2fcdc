"""Real Redis servers started by tests: a Redis Cluster of masters and replicas on loopback ports, or one
standalone server that keeps its data across a kill -9.

Debian's redis-server and redis-cli build it (`redis-cli --cluster create ... --cluster-replicas 1`,
~2 s); every node's files live in a folder of the test's, and stop() kills them all.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.helpers import redis_server_binary, wait_for


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too (so at most 55535)."""
    while True:
        port = random.randint(20_000, 55_000)
        if all(_free(p) for p in (port, port + 10_000)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@dataclass
class Node:
    """One redis-server writing every command to its append-only file (a kill -9 loses nothing written)."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None
    cluster: bool = True

    def start(self) -> None:
        """Start (or restart, with its node file: it rejoins the cluster as it left it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes" if self.cluster else "no",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--appendonly", "yes",
             "--appendfsync", "always", "--save", "", "--dir", str(self.folder), "--logfile", "redis.log",
             "--cluster-replica-validity-factor", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 10, f"redis node on {self.port}")

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        """kill -9: no shutdown, no last write."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def role(self) -> str:
        return self.client().info("replication")["role"]


@dataclass
class RedisCluster:
    """masters x (1 + replicas) nodes on free loopback ports."""

    folder: Path
    masters: int = 3
    replicas: int = 1
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """DRIP_REDIS_URL of the cluster: every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisCluster:
        if shutil.which("redis-cli") is None:
            raise RuntimeError("redis-cli is needed to build a cluster (apt-get install redis-tools)")
        self.nodes = [Node(cluster_port(), self.folder / f"node{i}") for i in range(self.masters * (1 + self.replicas))]
        for node in self.nodes:
            node.start()
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        wait_for(self.healthy, 30, "the cluster to agree on its slots")
        return self

    def healthy(self) -> bool:
        """Every live node reports cluster_state ok and all slots served."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                info = node.client().cluster("info")
            except redis.exceptions.ConnectionError:
                return False
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                return False
        return True

    def master_of(self, key: str) -> Node:
        """The node serving `key`'s slot now."""
        slot = key_slot(key.encode())
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                for start, end, master, *_ in node.client().cluster("slots"):
                    if start <= slot <= end:
                        return next(n for n in self.nodes if n.port == master[1])
            except redis.exceptions.ConnectionError:
                continue
        raise AssertionError(f"no node serves {key!r}")

    def flush(self) -> None:
        for node in self.nodes:
            if node.role() == "master":
                node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

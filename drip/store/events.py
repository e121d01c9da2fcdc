"""Redis I/O of history events: the per-shard streams the scripts append to, which the
recorder reads from their head and trims once PostgreSQL has them."""

from __future__ import annotations

import redis

from drip.core.keys import SHARDS, Keys


class Events:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def read(self, count: int) -> list[tuple[int, bytes, dict]]:
        """Up to `count` events per shard as (shard, entry_id, fields), oldest first. Events leave their
        stream only once recorded, so the head of each stream is always the first one not yet recorded."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.xrange(self.keys.events(shard), count=count)
        return [(shard, entry_id, fields) for shard, entries in enumerate(pipe.execute())
                for entry_id, fields in entries]

    def forget(self, last_by_shard: dict[int, bytes]) -> None:
        """Drop each shard's events up to and including the given entry (their rows are committed)."""
        pipe = self.client.pipeline(transaction=False)
        for shard, last in last_by_shard.items():
            ms, seq = last.split(b"-")
            pipe.xtrim(self.keys.events(shard), minid=f"{ms.decode()}-{int(seq) + 1}", approximate=False)
        pipe.execute()

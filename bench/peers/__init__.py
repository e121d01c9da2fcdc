"""The alternatives drip is measured against, each set up by script (pip extra `bench`, npm), none vendored.

Two kinds of peer module:

- throughput peers expose `throughput(queues, per_queue, redis_url, database_url) -> float`:
  one run, messages per second from the first enqueue to the last message handled,
  with a no-op task, preparing and cleaning up its own state;
- webhook peers expose `webhook(port, redis_url)`, a context manager that starts the
  server and yields a `Target` to load, stopping the server and cleaning up on exit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """An HTTP endpoint to load with one small JSON message per request."""

    url: str  # http://127.0.0.1:PORT
    path: str  # /enqueue
    body: bytes

"""drip: messages in by webhook, handled in order per queue and in parallel across queues."""

__version__ = "0.1.0"

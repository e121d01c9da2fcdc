"""drip: messages in by webhook, handled in order per queue and in parallel across queues.

Handlers may raise `drip.RateLimited(retry_after_s)`, `drip.Defer(seconds, reason)` or
`drip.Permanent(reason)`; everything else a handler raises is a failed attempt.
"""

from drip.core.errors import Defer, Permanent, RateLimited

__version__ = "0.1.0"
__all__ = ["Defer", "Permanent", "RateLimited", "__version__"]

"""The operator's console: server-rendered pages, a JSON API under /api/, and /metrics, in its own process."""

"""What a worker thread does: drain a queue, stand by for the next, keep leases alive; promotion of due messages; the history recorder."""

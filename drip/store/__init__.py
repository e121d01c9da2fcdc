"""Redis I/O: the script runner and the small stores that hold it (queues, leases, workers, leadership, dead letters, events); lua/ holds one script per change."""

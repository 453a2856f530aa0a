"""Jobs: the SQL job store, the taskiq queue, workers, leases and recovery."""

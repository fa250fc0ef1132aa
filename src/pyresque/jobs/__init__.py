"""What a job is: the registry of job classes, Resque's job hooks, retries, and the enqueue API."""

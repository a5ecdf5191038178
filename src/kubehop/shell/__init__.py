"""All I/O: Kubernetes API access, node transports, drain loop, executor, journal, lock."""

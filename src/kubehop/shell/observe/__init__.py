"""Observing a cluster: the API reads and node facts `versions`, `check` and `plan` judge."""

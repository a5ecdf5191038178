"""Frozen dataclasses only: versions, cluster state, findings, plans, journal records."""

"""Drain decisions: which pods a drain evicts, and why a drain is blocked."""

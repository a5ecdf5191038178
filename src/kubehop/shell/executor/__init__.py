"""Applying a plan: the executor, its steps and checks, journal, lock, gates and hooks."""

"""Simulating a plan step by step against the skew policy and the safety invariants."""

"""Draining a node as kubectl does, with PodDisruptionBudget explanations."""

"""The planner: from a cluster state and a target to an ordered, reviewable plan."""

"""Pure functions: skew rules, checks, planner, simulation, drain decisions."""

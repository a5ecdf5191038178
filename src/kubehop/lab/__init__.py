"""The simulated cluster: API server, controllers, node agents, scenarios."""

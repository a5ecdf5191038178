"""Kubernetes API access: kubeconfig, the client facade, errors mapped at the boundary."""

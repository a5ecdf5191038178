"""The lab's control plane behaviour: what kube-controller-manager, kube-scheduler, the kubelets
and the CloudNativePG operator do to a cluster's objects, on the lab's clock.

`kubehop.lab.controllers.manager.Controllers` runs them all. This package module imports none
of its submodules, so the API server's eviction can use `disruption_arithmetic` without pulling
in every controller (which would import the API server's eviction back).
"""

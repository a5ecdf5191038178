"""kubehop: upgrade kubeadm Kubernetes clusters one minor hop at a time, safely."""

__version__ = "0.1.0"

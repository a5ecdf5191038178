"""The lab's simulated nodes: file trees, package repositories and databases, a shell with
apt/dnf/kubeadm/systemctl, kubelets whose static pods follow their manifests, and one SSH
endpoint per node. `NodeAgents` is the entry point."""

from kubehop.lab.node.agents import NodeAgents, Result
from kubehop.lab.node.config import NodeSetup, NodeTiming

__all__ = ["NodeAgents", "NodeSetup", "NodeTiming", "Result"]

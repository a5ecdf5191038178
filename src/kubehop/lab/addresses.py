"""Every address the lab publishes that something might dial: all on loopback.

Node InternalIPs and kubeadm's `controlPlaneEndpoint` are written into objects that kubehop (and
kubectl) read; kubehop falls back to a node's InternalIP when its SSH inventory does not name the
node. So they live in 127.77.0.0/16 — on loopback, where nothing of anybody else's can be reached —
never in a private range that might route off this machine. The pod and Service networks are on
loopback too (a /10 of pods and a /12 of Services, sized as kubeadm's defaults), so no address
the lab writes anywhere leads off this machine.
"""

from __future__ import annotations

NODE_NETWORK = "127.77"
DEFAULT_NODE_IP = f"{NODE_NETWORK}.0.10"
# kubeadm's controlPlaneEndpoint in scenarios with a load balancer (its port: kubeadm's default).
LOAD_BALANCER_ENDPOINT = f"{NODE_NETWORK}.0.5:6443"
# Where a pod's hostIP points when its node has no InternalIP.
FALLBACK_HOST_IP = f"{NODE_NETWORK}.0.1"
# The Service network (kubeadm's `serviceSubnet`), its first address (the `kubernetes` Service)
# and its tenth (CoreDNS, the kubelets' `clusterDNS`), as kubeadm assigns them.
SERVICE_SUBNET = "127.96.0.0/12"
KUBERNETES_SERVICE_IP = "127.96.0.1"
CLUSTER_DNS_IP = "127.96.0.10"
# The pod network (kubeadm's `podSubnet`), one /24 a node.
POD_SUBNET = "127.128.0.0/10"


def pod_cidr(index: int) -> str:
    """The podCIDR of the `index`-th node (0-based): 127.128.0.0/24, 127.128.1.0/24, …"""
    if not 0 <= index < 64 * 256:
        raise ValueError(f"node index {index} outside the lab's pod network")
    return f"127.{128 + index // 256}.{index % 256}.0/24"


DEFAULT_POD_CIDR = pod_cidr(0)


def node_ip(index: int) -> str:
    """The InternalIP of the `index`-th node (0-based): 127.77.0.10 … 127.77.0.249, then
    127.77.1.10 …: 240 a block, every octet a valid one."""
    if not 0 <= index < 240 * 256:
        raise ValueError(f"node index {index} outside the lab's address range")
    return f"{NODE_NETWORK}.{index // 240}.{10 + index % 240}"

"""Every address the lab publishes that something might dial: all on loopback.

Node InternalIPs and kubeadm's `controlPlaneEndpoint` are written into objects that kubehop (and
kubectl) read; kubehop falls back to a node's InternalIP when its SSH inventory does not name the
node. So they live in 127.77.0.0/16 — on loopback, where nothing of anybody else's can be reached —
never in a private range that might route off this machine. Pod and service CIDRs stay as
kubeadm's defaults: nothing connects to them.
"""

from __future__ import annotations

NODE_NETWORK = "127.77"
DEFAULT_NODE_IP = f"{NODE_NETWORK}.0.10"
# kubeadm's controlPlaneEndpoint in scenarios with a load balancer (its port: kubeadm's default).
LOAD_BALANCER_ENDPOINT = f"{NODE_NETWORK}.0.5:6443"
# Where a pod's hostIP points when its node has no InternalIP.
FALLBACK_HOST_IP = f"{NODE_NETWORK}.0.1"


def node_ip(index: int) -> str:
    """The InternalIP of the `index`-th node (0-based): 127.77.0.10 … 127.77.0.249, then
    127.77.1.10 …: 240 a block, every octet a valid one."""
    if not 0 <= index < 240 * 256:
        raise ValueError(f"node index {index} outside the lab's address range")
    return f"{NODE_NETWORK}.{index // 240}.{10 + index % 240}"

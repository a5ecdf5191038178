"""kubeadm-node: `kubeadm upgrade node` — a control plane's static pods, or a worker's kubelet
configuration (kubernetes/kubernetes cmd/kubeadm/app/cmd/upgrade/node.go)."""

from __future__ import annotations

from kubehop.core.steps.base import STATIC_POD_KEYS, Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion, MinorVersion

KIND = StepKind.KUBEADM_NODE
EXPECT_KEYS = frozenset(STATIC_POD_KEYS)
LOCAL = True
COMMANDS = (Command(("kubeadm", "upgrade", "node")),)


def control_plane_description(version: KubeVersion) -> str:
    return f"kubeadm upgrade node: this control plane's static pods to {version}"


def control_plane_expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return dict.fromkeys(STATIC_POD_KEYS, str(version))


def worker_description(minor: MinorVersion) -> str:
    """A worker's step has no `expect`: only the kubelet's configuration changes."""
    return f"kubeadm upgrade node: the kubelet configuration of {minor}"


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    return sim.kubeadm_node(n)


def cost(step: Step, est: Estimate) -> float:
    # A control plane: its static pods restart; a worker: kubelet config only.
    return (4 * est.costs.static_pod_restart if step.node in est.control_plane
            else est.costs.kubeadm_worker)

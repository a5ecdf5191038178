"""kubeadm-apply: `kubeadm upgrade apply -y vX` on the first control plane: etcd, its static
pods, then kubeadm-config (kubernetes/kubernetes cmd/kubeadm/app/cmd/upgrade/apply.go)."""

from __future__ import annotations

from functools import cache

from kubehop.core.steps.base import STATIC_POD_KEYS, Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.KUBEADM_APPLY
EXPECT_KEYS = frozenset({ExpectKey.KUBERNETES_VERSION, *STATIC_POD_KEYS})
LOCAL = False


@cache
def commands(version: KubeVersion) -> tuple[Command, ...]:
    return (Command(("kubeadm", "upgrade", "apply", "-y", str(version))),)


def description(version: KubeVersion) -> str:
    return (f"kubeadm upgrade apply {version}: etcd, kube-apiserver, kube-controller-manager, "
            f"kube-scheduler, then kubeadm-config")


def expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    out: dict[ExpectKey, ExpectValue] = {ExpectKey.KUBERNETES_VERSION: str(version)}
    out.update(dict.fromkeys(STATIC_POD_KEYS, str(version)))
    return out


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    problems = sim.kubeadm_policy(n, hop)
    if problems:
        return problems
    return sim.apply_cluster_version(n, hop)


def cost(step: Step, est: Estimate) -> float:
    # kubeadm rewrites etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
    return 4 * est.costs.static_pod_restart

"""kubelet-restart: `systemctl daemon-reload && systemctl restart kubelet`, as the upstream
guide does (kubernetes/website kubeadm-upgrade.md)."""

from __future__ import annotations

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.KUBELET_RESTART
EXPECT_KEYS = frozenset({ExpectKey.KUBELET})
LOCAL = True
COMMANDS = (Command(("systemctl", "daemon-reload")),
            Command(("systemctl", "restart", "kubelet")))


def description(version: KubeVersion) -> str:
    return f"restart the kubelet at {version}"


def expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey.KUBELET: str(version)}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    return sim.restart_kubelet(n, hop)


def cost(step: Step, est: Estimate) -> float:
    return est.costs.kubelet_restart

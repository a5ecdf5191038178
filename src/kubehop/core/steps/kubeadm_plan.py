"""kubeadm-plan: `kubeadm upgrade plan vX` on the first control plane, a gate on kubeadm's own
health and version checks (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go)."""

from __future__ import annotations

from functools import cache

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import Command, ExpectKey, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.KUBEADM_PLAN
EXPECT_KEYS: frozenset[ExpectKey] = frozenset()
LOCAL = False


@cache
def commands(version: KubeVersion) -> tuple[Command, ...]:
    return (Command(("kubeadm", "upgrade", "plan", str(version))),)


def description(version: KubeVersion) -> str:
    return f"kubeadm upgrade plan {version}: kubeadm's own health and version checks"


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    return sim.kubeadm_policy(n, hop)


def cost(step: Step, est: Estimate) -> float:
    return est.costs.kubeadm_plan

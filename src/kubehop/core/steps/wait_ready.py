"""wait-ready: wait until the node reports Ready at the new kubelet version (an API read)."""

from __future__ import annotations

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.WAIT_READY
EXPECT_KEYS = frozenset({ExpectKey.KUBELET, ExpectKey.READY})
LOCAL = True


def description(version: KubeVersion) -> str:
    return f"wait until the node is Ready at {version}"


def expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey.KUBELET: str(version), ExpectKey.READY: True}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    """Changes nothing: the kubelet restart made the node Ready (its `expect` checks it)."""
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.api_call

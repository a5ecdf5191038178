"""uncordon: schedulable again, once the kubelet runs the new version."""

from __future__ import annotations

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.UNCORDON
EXPECT_KEYS = frozenset({ExpectKey.KUBELET, ExpectKey.SCHEDULABLE})
LOCAL = True
DESCRIPTION = "uncordon: schedulable again"


def expect(version: KubeVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey.KUBELET: str(version), ExpectKey.SCHEDULABLE: True}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    sim.cordoned.discard(n.name)
    sim.drained.discard(n.name)
    n.schedulable = True
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.api_call

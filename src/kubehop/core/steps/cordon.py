"""cordon: mark the node unschedulable (an API action; kubectl pkg/drain/cordon.go writes only
when the node is not already cordoned)."""

from __future__ import annotations

from collections.abc import Mapping

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.CORDON
EXPECT_KEYS = frozenset({ExpectKey.SCHEDULABLE})
LOCAL = True
DESCRIPTION = "cordon: no new pods"
EXPECT: Mapping[ExpectKey, ExpectValue] = {ExpectKey.SCHEDULABLE: False}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    sim.cordoned.add(n.name)
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.api_call

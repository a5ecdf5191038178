"""gate: a barrier closing a wave; every step of the next wave comes after it (`model.plan`)."""

from __future__ import annotations

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.GATE
EXPECT_KEYS: frozenset[ExpectKey] = frozenset()
LOCAL = False
DESCRIPTION = "barrier: everything before it is done"


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    return []


def cost(step: Step, est: Estimate) -> float:
    return 0.0

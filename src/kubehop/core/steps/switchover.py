"""switchover: wait for CloudNativePG to move the primaries of `params["databases"]` off the
cordoned node (it switches over to a replica when the primary's node is cordoned)."""

from __future__ import annotations

from collections.abc import Mapping

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, ExpectValue, ParamValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.SWITCHOVER
EXPECT_KEYS = frozenset({ExpectKey.PRIMARY_NOT_ON_NODE})
LOCAL = False
EXPECT: Mapping[ExpectKey, ExpectValue] = {ExpectKey.PRIMARY_NOT_ON_NODE: True}


def description(databases: tuple[str, ...]) -> str:
    return (f"wait for CloudNativePG to switch over {', '.join(databases)} to a replica on "
            f"another node (it does so when the node is cordoned)")


def params(databases: tuple[str, ...]) -> dict[str, ParamValue]:
    return {"databases": databases}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    if n.name not in sim.cordoned and n.name not in sim.precordoned:
        return [("switchover", f"node {n.name} is not cordoned: CloudNativePG only "
                               f"switches over from a cordoned node")]
    for db in step.params.get("databases", ()):  # type: ignore[union-attr]
        if sim.primaries.get(str(db)) == n.name:
            sim.primaries[str(db)] = None
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.switchover

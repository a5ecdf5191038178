"""drain: evict the node's pods through the Eviction API, PodDisruptionBudgets honoured
(kubectl pkg/drain/drain.go); DaemonSet pods stay."""

from __future__ import annotations

from collections.abc import Mapping

from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation
from kubehop.model.plan import ExpectKey, ExpectValue, ParamValue, Step, StepKind
from kubehop.model.versions import KubeVersion

KIND = StepKind.DRAIN
EXPECT_KEYS = frozenset({ExpectKey.SCHEDULABLE, ExpectKey.EVICTABLE_PODS})
LOCAL = True
EXPECT: Mapping[ExpectKey, ExpectValue] = {ExpectKey.SCHEDULABLE: False,
                                           ExpectKey.EVICTABLE_PODS: 0}
_PARAMS: dict[tuple[bool, bool], Mapping[str, ParamValue]] = {
    (empty_dir, bare): {"ignoreDaemonsets": True, "deleteEmptydirData": empty_dir,
                        "force": bare}
    for empty_dir in (False, True) for bare in (False, True)}


def description(evictable: int) -> str:
    return (f"drain: evict {evictable} pods through the Eviction API "
            f"(PodDisruptionBudgets honoured)")


def params(empty_dir: bool, bare: bool) -> Mapping[str, ParamValue]:
    """kubectl drain's flags: emptyDir data deleted and bare pods forced only when there are."""
    return _PARAMS[(empty_dir, bare)]


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    if n.name not in sim.cordoned and n.name not in sim.precordoned:
        return [("drain", f"node {n.name} is drained without being cordoned")]
    sim.drained.add(n.name)
    return []


def cost(step: Step, est: Estimate) -> float:
    """Evictions run at once; a PDB with budget b evicts its n pods on the node in ceil(n/b)
    rounds, each waiting for the replacements to start."""
    costs, index = est.costs, est.index
    load = index.load(step.node or "")
    if not load.evictable:
        return costs.api_call
    rounds = 1
    if max(load.pdb_pods.values(), default=0) > 1:  # (one pod per PDB: one round)
        budget = index.budgets.get
        for k, n in load.pdb_pods.items():
            r = -(-n // max(1, budget(k, 1)))
            if r > rounds:
                rounds = r
    return costs.api_call + costs.pod_stop + (rounds - 1) * (costs.pod_start + costs.pod_stop)

"""Replays a plan on the state model and checks the safety invariants at every step boundary.

Pure: takes the observed `ClusterState` and the plan's steps, returns violations, the final
component versions and a duration estimate. Checks (DESIGN "Safety invariants"):
1. skew: `evaluate_skew` on the simulated components after every step that changes a version
   (no blocking finding that was not there at the start), plus kubeadm's own rules: its version
   policy at `upgrade plan/apply`, "same minor as the cluster or one newer", "upgrades a node last
   managed by its own minor or one older", packages only from the repository of their minor;
2/5. at most max-unavailable workers cordoned, PDB budgets and capacity for every set of nodes
   that may be cordoned together (`simulate_dag`);
3. one control-plane node at a time, alone;
4. a kubelet changes minor only on a drained node;
6. nothing left cordoned; and every step's `expect` holds in the simulated state after it.

Concurrency is judged for every order the DAG allows; state is replayed in list order, which is
exact because global changes (control-plane steps) never share a slot with other steps and the
other steps only change their own node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubehop.core.simulate.dag import Violation, check_concurrency, slot_ranges
from kubehop.core.simulate.state import SimState
from kubehop.core.steps import REGISTRY
from kubehop.core.steps.base import Estimate, StepCosts
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.cluster import ClusterState
from kubehop.model.components import ClusterComponents
from kubehop.model.plan import Plan, Step
from kubehop.model.versions import KubeVersion


class PlanInvariantError(RuntimeError):
    """The planner produced a plan that breaks a safety invariant (a kubehop bug)."""


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What replaying a plan found; `components` and `cluster_version` are the end state."""

    violations: tuple[Violation, ...]
    estimate_seconds: float
    components: ClusterComponents
    cluster_version: KubeVersion | None
    max_cordoned_workers: int
    cordoned_at_end: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


def step_costs(steps: Sequence[Step], index: WorkloadIndex, costs: StepCosts,
               control_plane: set[str]) -> list[float]:
    """Estimated duration of each step, in lab seconds (each kind's `cost`)."""
    est = Estimate(costs, index, frozenset(control_plane))
    cost = {kind: module.cost for kind, module in REGISTRY.items()}
    return [cost[s.kind](s, est) for s in steps]


def simulate(state: ClusterState, steps: Sequence[Step] | Plan, max_unavailable: int,
             costs: StepCosts | None = None, index: WorkloadIndex | None = None, *,
             memo: bool = True) -> SimulationResult:
    """Replay `steps` (or a plan's) from `state`; every violation found, in plan order.
    `memo=False`: without sharing work between workers in equal states (the same result)."""
    violations, estimate, most, sim = _run(state, steps, max_unavailable, costs, index, memo)
    return SimulationResult(
        violations=violations,
        estimate_seconds=estimate,
        components=sim.components(),
        cluster_version=sim.cluster_version,
        max_cordoned_workers=most,
        cordoned_at_end=tuple(sorted(sim.cordoned - sim.precordoned)),
    )


def check_plan(state: ClusterState, steps: Sequence[Step], max_unavailable: int,
               costs: StepCosts | None = None,
               index: WorkloadIndex | None = None, *, memo: bool = True
               ) -> tuple[tuple[Violation, ...], float]:
    """`simulate`'s violations and estimate, without gathering the end state."""
    violations, estimate, _, _ = _run(state, steps, max_unavailable, costs, index, memo)
    return violations, estimate


def _run(state: ClusterState, steps: Sequence[Step] | Plan, max_unavailable: int,
         costs: StepCosts | None, index: WorkloadIndex | None, memo: bool
         ) -> tuple[tuple[Violation, ...], float, int, SimState]:
    if isinstance(steps, Plan):
        steps = steps.steps
    costs = costs or StepCosts()
    index = index or WorkloadIndex(state)
    violations: list[Violation] = []
    sim = SimState(state, memo=memo)
    control_plane = {n.name for n in state.control_plane_nodes}
    slots = slot_ranges(steps, violations, control_plane,
                        step_costs(steps, index, costs, control_plane))
    most = 0
    estimate = 0.0
    if slots is not None:
        most = check_concurrency(steps, slots, control_plane, max_unavailable, index,
                                 violations)
        estimate = slots.makespan
        sim.replay(steps, index, violations)
    return tuple(violations), round(estimate, 1), most, sim

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
from kubehop.core.workloads import WorkloadIndex
from kubehop.model.cluster import ClusterState
from kubehop.model.components import ClusterComponents
from kubehop.model.plan import Plan, Step, StepKind
from kubehop.model.versions import KubeVersion


class PlanInvariantError(RuntimeError):
    """The planner produced a plan that breaks a safety invariant (a kubehop bug)."""


@dataclass(frozen=True, slots=True)
class StepCosts:
    """Lab seconds per action (the lab's default timing); drains add per-pod costs."""

    pod_start: float = 5
    pod_stop: float = 2
    kubelet_restart: float = 10
    static_pod_restart: float = 20  # per control-plane component kubeadm rewrites
    package_install: float = 8
    api_call: float = 1
    repo_switch: float = 1
    kubeadm_plan: float = 5
    kubeadm_worker: float = 2  # `kubeadm upgrade node` on a worker: kubelet config only
    switchover: float = 10


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


def drain_cost(node: str, index: WorkloadIndex, costs: StepCosts) -> float:
    """Evictions run at once; a PDB with budget b evicts its n pods on the node in ceil(n/b)
    rounds, each waiting for the replacements to start."""
    load = index.load(node)
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


def step_costs(steps: Sequence[Step], index: WorkloadIndex, costs: StepCosts,
               control_plane: set[str]) -> list[float]:
    """Estimated duration of each step, in lab seconds."""
    fixed = {
        StepKind.GATE: 0.0,
        StepKind.REPO_SWITCH: costs.repo_switch,
        StepKind.KUBEADM_INSTALL: costs.package_install,
        StepKind.KUBELET_INSTALL: costs.package_install,
        StepKind.KUBEADM_PLAN: costs.kubeadm_plan,
        # kubeadm rewrites etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
        StepKind.KUBEADM_APPLY: 4 * costs.static_pod_restart,
        StepKind.KUBELET_RESTART: costs.kubelet_restart,
        StepKind.SWITCHOVER: costs.switchover,
        StepKind.CORDON: costs.api_call,
        StepKind.WAIT_READY: costs.api_call,
        StepKind.UNCORDON: costs.api_call,
    }
    out = list(map(fixed.get, [s.kind for s in steps]))
    for i, c in enumerate(out):
        if c is not None:
            continue
        s = steps[i]
        kind = s.kind
        if kind is StepKind.DRAIN:
            out[i] = drain_cost(s.node or "", index, costs)
        elif kind is StepKind.KUBEADM_NODE:
            out[i] = (4 * costs.static_pod_restart if s.node in control_plane
                      else costs.kubeadm_worker)
        elif kind is StepKind.REMEDIATE_DRIFT:
            out[i] = costs.static_pod_restart * max(1, len(s.commands))
        else:
            out[i] = costs.api_call
    return out  # type: ignore[return-value]


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

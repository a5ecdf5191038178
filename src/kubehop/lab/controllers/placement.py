"""Incremental placement: the pure scheduler's filters and score over a cache of node usage.

`kubehop.lab.controllers.scheduler.schedule` recomputes every node's usage from every pod, which is
O(pods) per decision; kube-scheduler instead keeps a cache updated by pod events and stops
after `numFeasibleNodesToFind` feasible nodes (percentageOfNodesToScore). This module does the
same, reusing the pure module's taint, toleration, affinity and quantity rules, so both agree on
what fits and on the FailedScheduling wording. It adds the hostname-topology pod anti-affinity
CloudNativePG sets on its instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kubehop.lab.api.selectors import InvalidSelectorError
from kubehop.lab.controllers import scheduler as pure
from kubehop.lab.controllers.disruption_arithmetic import labels_match

Obj = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
MIN_FEASIBLE_NODES = 100  # minFeasibleNodesToFind
MIN_FEASIBLE_PERCENT = 5  # minFeasibleNodesPercentageToFind


@lru_cache(maxsize=4096)
def _milli(value: str) -> int:
    return pure.milli_value(value)


@lru_cache(maxsize=4096)
def _bytes(value: str) -> int:
    return pure.int_value(value)


def requests(pod: Mapping[str, Any], *, non_zero: bool = False) -> tuple[int, int]:
    """`scheduler.pod_requests` with cached quantity parsing (templates repeat them)."""

    def of(c: Mapping[str, Any]) -> tuple[int, int]:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = _milli(str(req["cpu"])) if "cpu" in req else None
        mem = _bytes(str(req["memory"])) if "memory" in req else None
        if non_zero:
            return (pure.DEFAULT_MILLI_CPU if cpu is None else cpu,
                    pure.DEFAULT_MEMORY if mem is None else mem)
        return cpu or 0, mem or 0

    spec = pod.get("spec") or {}
    cpu = mem = 0
    for c in spec.get("containers") or ():
        a, b = of(c)
        cpu, mem = cpu + a, mem + b
    for c in spec.get("initContainers") or ():
        a, b = of(c)
        cpu, mem = max(cpu, a), max(mem, b)
    overhead = spec.get("overhead") or {}
    cpu += _milli(str(overhead["cpu"])) if "cpu" in overhead else 0
    mem += _bytes(str(overhead["memory"])) if "memory" in overhead else 0
    return cpu, mem


@dataclass(slots=True)
class NodeInfo:
    """One node as the scheduler cache sees it: allocatable, taints and what is bound there."""

    name: str
    node: Obj
    cpu: int = 0
    memory: int = 0
    pods: int = 110
    taints: list[Obj] = field(default_factory=list)
    used_cpu: int = 0
    used_memory: int = 0
    count: int = 0
    score_cpu: int = 0
    score_memory: int = 0
    # Cordoned or carrying a NoSchedule/NoExecute taint: only then can a pod's tolerations
    # decide whether it fits (an open node passes `filter_node`'s first two filters for any pod).
    blocked: bool = False
    # What those two filters read of the node (nodes with equal gates pass or fail them alike).
    gate: tuple[Any, ...] = ()
    # For the last pod requests (cpu, memory, non-zero cpu, non-zero memory) checked here: its
    # LeastAllocated score if it fits on resources, else -1 (forgotten whenever the node's
    # usage or allocatable changes). Scores of fitting pods are 0-100.
    memo_key: tuple[int, int, int, int] | None = None
    memo_score: int = 0

    def refresh(self, node: Obj) -> None:
        self.node = node
        status = node.get("status") or {}
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.cpu = _milli(str(alloc.get("cpu", 0)))
        self.memory = _bytes(str(alloc.get("memory", 0)))
        self.pods = _bytes(str(alloc.get("pods", 110)))
        self.taints = pure.node_taints(node)
        self.memo_key = None
        unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        gating = tuple((t.get("key"), t.get("value", ""), t.get("value"), t.get("effect"))
                       for t in self.taints if t.get("effect") in ("NoSchedule", "NoExecute"))
        self.blocked = unschedulable or bool(gating)
        self.gate = (unschedulable, gating)

    def add(self, usage: tuple[int, int, int, int], sign: int = 1) -> None:
        self.used_cpu += sign * usage[0]
        self.used_memory += sign * usage[1]
        self.score_cpu += sign * usage[2]
        self.score_memory += sign * usage[3]
        self.count += sign
        self.memo_key = None


def usage_of(pod: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(cpu, memory, non-zero cpu, non-zero memory) a bound pod takes from its node."""
    return (*requests(pod), *requests(pod, non_zero=True))


def feasible_nodes_to_find(total: int) -> int:
    """numFeasibleNodesToFind with the adaptive default percentageOfNodesToScore
    (kubernetes pkg/scheduler/schedule_one.go): every node below 100 nodes, else
    max(5, 50 - nodes/125) percent of them, at least 100. The search starts where the previous
    pod's stopped (nextStartNodeIndex), so successive pods look at different nodes."""
    if total < MIN_FEASIBLE_NODES:
        return total
    percent = max(MIN_FEASIBLE_PERCENT, 50 - total // 125)
    return max(MIN_FEASIBLE_NODES, total * percent // 100)


def anti_affinity_terms(pod: Mapping[str, Any]) -> tuple[list[Obj], list[tuple[int, Obj]]]:
    """(required, [(weight, term)] preferred) pod anti-affinity terms on the hostname topology."""
    anti = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    required = [t for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or ()
                if t.get("topologyKey") == HOSTNAME]
    preferred = [(int(w.get("weight", 1)), w.get("podAffinityTerm") or {})
                 for w in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
    return required, [(w, t) for w, t in preferred if t.get("topologyKey") == HOSTNAME]


def node_affinity_free(pod: Mapping[str, Any]) -> bool:
    """Whether the NodeAffinity filter passes the pod on every node: no nodeSelector and no
    required node affinity terms (`scheduler._matches_affinity` is then true for any node;
    note an empty `nodeSelectorTerms` list matches no node)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeSelector"):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    return required.get("nodeSelectorTerms") is None


def _term_matches(term: Obj, pod_ns: str, other: Obj) -> bool:
    meta = other.get("metadata") or {}
    namespaces = term.get("namespaces") or [pod_ns]
    if meta.get("namespace") not in namespaces or meta.get("deletionTimestamp"):
        return False
    try:
        return labels_match(term.get("labelSelector"), meta.get("labels"))
    except InvalidSelectorError:
        return False


def gate_reason(pod: Obj, info: NodeInfo) -> str | None:
    """Why NodeUnschedulable or TaintToleration rejects the pod on the node (None: both pass).

    A function of the pod's tolerations and `info.gate` alone (never fails on an open node)."""
    if not info.blocked:
        return None
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    if (info.node.get("spec") or {}).get("unschedulable") and not pure._tolerates(
        tolerations, {"key": pure.UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    ):
        return "node(s) were unschedulable"
    for taint in info.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not pure._tolerates(
            tolerations, taint
        ):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None


def filter_node(
    pod: Obj, req: tuple[int, int], info: NodeInfo, required: list[Obj], on_node: list[Obj]
) -> tuple[list[str], bool]:
    """`scheduler._filter` on cached node facts: the failing filter's reasons ([] = fits) and
    whether preemption could resolve them. `on_node` is only read when `required` is set."""
    spec = pod.get("spec") or {}
    node = info.node
    if (why := gate_reason(pod, info)) is not None:
        return [why], False
    if (spec.get("nodeSelector") or spec.get("affinity")) and not pure._matches_affinity(
        pod, node
    ):
        return ["node(s) didn't match Pod's node affinity/selector"], False
    ns = pod["metadata"].get("namespace", "")
    if required and any(_term_matches(t, ns, o) for t in required for o in on_node):
        return ["node(s) didn't match pod anti-affinity rules"], True
    reasons = []
    if info.count + 1 > info.pods:
        reasons.append("Too many pods")
    if req[0] > 0 and req[0] > info.cpu - info.used_cpu:
        reasons.append("Insufficient cpu")
    if req[1] > 0 and req[1] > info.memory - info.used_memory:
        reasons.append("Insufficient memory")
    return reasons, True


def least_allocated(info: NodeInfo, nz: tuple[int, int]) -> int:
    """NodeResourcesFit LeastAllocated (0-100) with non-zero requests."""
    total = 0
    for capacity, requested in ((info.cpu, info.score_cpu + nz[0]),
                                (info.memory, info.score_memory + nz[1])):
        if capacity and requested <= capacity:
            total += (capacity - requested) * 100 // capacity
    return total // 2


def anti_affinity_penalty(
    pod: Obj, preferred: list[tuple[int, Obj]], on_node: list[Obj]
) -> int:
    """Sum of the weights of preferred anti-affinity terms some pod on the node matches."""
    ns = pod["metadata"].get("namespace", "")
    return sum(w for w, t in preferred if any(_term_matches(t, ns, o) for o in on_node))


def failure_message(
    pod: Mapping[str, Any], total: int, reasons: dict[str, int], resolvable: list[bool]
) -> str:
    """FitError.Error() plus DefaultPreemption's PostFilter message (the lab never preempts)."""
    if total == 0:
        return "no nodes available to schedule pods"
    message = f"0/{total} nodes are available: {pure._histogram(reasons)}."
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return message + " preemption: not eligible due to preemptionPolicy=Never.."
    outcome: dict[str, int] = {}
    for can in resolvable:
        k = ("No preemption victims found for incoming pod" if can
             else "Preemption is not helpful for scheduling")
        outcome[k] = outcome.get(k, 0) + 1
    if outcome:
        message += f" preemption: 0/{total} nodes are available: {pure._histogram(outcome)}.."
    return message


def pinned_node(pod: Mapping[str, Any]) -> str | None:
    """The single node a required `metadata.name` field term allows (DaemonSet pods)."""
    required = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if len(terms) != 1 or (terms[0].get("matchExpressions") or []):
        return None
    fields = terms[0].get("matchFields") or []
    if len(fields) == 1 and fields[0].get("key") == "metadata.name" and \
            fields[0].get("operator") == "In" and len(fields[0].get("values") or []) == 1:
        return fields[0]["values"][0]
    return None

"""Pod placement for the lab, after kube-scheduler's default profile, on plain API dicts.

Filters run per node in the default plugin order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit) and the first failing one gives that node's reasons; when no
node fits, the message is `FitError.Error()` with DefaultPreemption's PostFilter message, as in a
FailedScheduling event. Scoring is NodeResourcesFit's LeastAllocated (cpu and memory, weight 1,
non-zero default requests); upstream adds other score plugins and breaks ties at random, the lab
breaks ties by node name so runs repeat. The lab never preempts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

# --- quantities ------------------------------------------------------------------------------

_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{f"{p}i": Fraction(1024 ** (i + 1)) for i, p in enumerate("KMGTPE")},
}


def parse_quantity(value: str | int | float) -> Fraction:
    """A resource.Quantity (`100m`, `2`, `0.5`, `128Mi`, `1G`, `1e3`) as an exact number."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Fraction(Decimal(str(value)))
    m = _QUANTITY_RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not a quantity: {value!r} (expected e.g. 100m, 2, 128Mi, 1G)")
    try:
        number = Fraction(Decimal(m.group(1)))
    except InvalidOperation as err:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"not a quantity: {value!r}") from err
    suffix = m.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def milli_value(value: str | int | float) -> int:
    """Quantity.MilliValue: thousandths, rounded up (cpu `0.5` → 500)."""
    return math.ceil(parse_quantity(value) * 1000)


def int_value(value: str | int | float) -> int:
    """Quantity.Value: rounded up (memory `1Ki` → 1024, `1.5` → 2)."""
    return math.ceil(parse_quantity(value))


# --- requests --------------------------------------------------------------------------------

# schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: used for scoring only.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def pod_requests(pod: Mapping[str, Any], *, non_zero: bool = False) -> tuple[int, int]:
    """(milli-cpu, memory bytes) a pod requests: containers summed, init containers' max,
    plus overhead (resourcehelper.PodRequests). `non_zero` applies the scoring defaults."""

    def of(container: Mapping[str, Any]) -> tuple[int, int]:
        req = (container.get("resources") or {}).get("requests") or {}
        cpu = milli_value(req["cpu"]) if "cpu" in req else None
        mem = int_value(req["memory"]) if "memory" in req else None
        if non_zero:
            return (
                DEFAULT_MILLI_CPU if cpu is None else cpu,
                DEFAULT_MEMORY if mem is None else mem,
            )
        return cpu or 0, mem or 0

    spec = pod.get("spec") or {}
    cpu = mem = 0
    for container in spec.get("containers") or []:
        c, m = of(container)
        cpu, mem = cpu + c, mem + m
    for container in spec.get("initContainers") or []:
        c, m = of(container)
        cpu, mem = max(cpu, c), max(mem, m)
    overhead = spec.get("overhead") or {}
    cpu += milli_value(overhead["cpu"]) if "cpu" in overhead else 0
    mem += int_value(overhead["memory"]) if "memory" in overhead else 0
    return cpu, mem


# --- filters ---------------------------------------------------------------------------------

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def _tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint for any of the tolerations."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("key") and tol.get("key") != taint.get("key"):
            continue
        op = tol.get("operator") or "Equal"
        if op == "Exists" or (
            op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")
        ):
            return True
    return False


def node_taints(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The node's taints, plus the condition taints the node lifecycle controller would add."""
    taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    ready = next(
        (
            c.get("status")
            for c in (node.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ),
        "Unknown",
    )
    implied = {"True": None, "False": "node.kubernetes.io/not-ready"}.get(
        ready, "node.kubernetes.io/unreachable"
    )
    if implied and not any(t.get("key") == implied for t in taints):
        taints.append({"key": implied, "effect": "NoSchedule"})
    return taints


def _match_requirement(req: Mapping[str, Any], value: str | None) -> bool:
    """A NodeSelectorRequirement against one label or field value (None = absent)."""
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if op == "Gt" else left < right
    return False


def _matches_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """NodeAffinity filter: spec.nodeSelector and required node affinity terms (ORed)."""
    spec = pod.get("spec") or {}
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is None:
        return True
    for term in terms:
        exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not fields:
            continue  # an empty term matches no node
        if all(_match_requirement(e, labels.get(e.get("key"))) for e in exprs) and all(
            _match_requirement(f, meta.get("name") if f.get("key") == "metadata.name" else None)
            for f in fields
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class _NodeState:
    name: str
    cpu: int  # allocatable milli-cpu
    memory: int
    pods: int
    used_cpu: int = 0  # requests of pods bound there
    used_memory: int = 0
    count: int = 0
    score_cpu: int = 0  # non-zero requests, for scoring
    score_memory: int = 0


def _filter(
    pod: Mapping[str, Any], node: Mapping[str, Any], state: _NodeState
) -> tuple[list[str], bool]:
    """The failing filter's reasons for this node ([] = fits) and whether they are resolvable."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not _tolerates(
        tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    ):
        return ["node(s) were unschedulable"], False
    for taint in node_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
            tolerations, taint
        ):
            return [
                f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
            ], False
    if not _matches_affinity(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"], False
    reasons = []
    if state.count + 1 > state.pods:
        reasons.append("Too many pods")
    cpu, memory = pod_requests(pod)
    if cpu > 0 and cpu > state.cpu - state.used_cpu:
        reasons.append("Insufficient cpu")
    if memory > 0 and memory > state.memory - state.used_memory:
        reasons.append("Insufficient memory")
    return reasons, True


def _least_allocated(state: _NodeState, pod: Mapping[str, Any]) -> int:
    """NodeResourcesFit LeastAllocated score (0-100) with non-zero requests."""
    cpu, memory = pod_requests(pod, non_zero=True)
    scores = []
    for capacity, requested in (
        (state.cpu, state.score_cpu + cpu),
        (state.memory, state.score_memory + memory),
    ):
        scores.append(
            0 if capacity == 0 or requested > capacity else (capacity - requested) * 100 // capacity
        )
    return sum(scores) // len(scores)


# --- placement -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pod goes: `node`, or None with the FailedScheduling `message` and the histogram
    of filter reasons (`reasons`: reason → node count)."""

    node: str | None
    message: str = ""
    reasons: dict[str, int] = field(default_factory=dict)


def _histogram(reasons: dict[str, int]) -> str:
    """FitError's sorted "N reason" list (sorted as strings, as upstream does)."""
    return ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))


def _node_states(
    nodes: Sequence[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> dict[str, _NodeState]:
    states: dict[str, _NodeState] = {}
    for node in nodes:
        status = node.get("status") or {}
        alloc = status.get("allocatable") or status.get("capacity") or {}
        states[(node.get("metadata") or {}).get("name", "")] = _NodeState(
            name=(node.get("metadata") or {}).get("name", ""),
            cpu=milli_value(alloc.get("cpu", 0)),
            memory=int_value(alloc.get("memory", 0)),
            pods=int_value(alloc.get("pods", 110)),
        )
    for pod in pods:
        # The scheduler's cache holds assigned, non-terminal pods (terminating ones included).
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound not in states or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        s = states[bound]
        cpu, memory = pod_requests(pod)
        nz_cpu, nz_memory = pod_requests(pod, non_zero=True)
        states[bound] = _NodeState(
            s.name, s.cpu, s.memory, s.pods,
            s.used_cpu + cpu, s.used_memory + memory, s.count + 1,
            s.score_cpu + nz_cpu, s.score_memory + nz_memory,
        )  # fmt: skip
    return states


def schedule(
    pod: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> Placement:
    """Choose a node for a pending pod, given every node and the pods already in the cluster.

    A pod with spec.nodeName is not the scheduler's to place: it is returned as bound there.
    """
    bound = (pod.get("spec") or {}).get("nodeName")
    if bound:
        return Placement(bound)
    if not nodes:
        return Placement(None, "no nodes available to schedule pods")  # ErrNoNodesAvailable
    states = _node_states(nodes, pods)
    fits: list[tuple[int, str]] = []
    reasons: dict[str, int] = {}
    resolvable: dict[str, bool] = {}
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        failed, can_preempt = _filter(pod, node, states[name])
        if not failed:
            fits.append((-_least_allocated(states[name], pod), name))
            continue
        resolvable[name] = can_preempt
        for reason in failed:
            reasons[reason] = reasons.get(reason, 0) + 1
    if fits:
        return Placement(min(fits)[1])

    total = len(nodes)
    message = f"0/{total} nodes are available: {_histogram(reasons)}."
    # DefaultPreemption PostFilter: the lab's pods share one priority, so nothing is preempted.
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        post = "preemption: not eligible due to preemptionPolicy=Never."
    else:
        outcome: dict[str, int] = {}
        for can in resolvable.values():
            key = (
                "No preemption victims found for incoming pod"
                if can
                else "Preemption is not helpful for scheduling"
            )
            outcome[key] = outcome.get(key, 0) + 1
        post = (
            f"preemption: 0/{total} nodes are available: {_histogram(outcome)}." if outcome else ""
        )
    if post:
        message += f" {post}."
    return Placement(None, message, reasons)

"""What may run at the same time in a plan's DAG, for every order an executor may choose.

Gate steps split a plan into slots: slot 0 before the first gate, slot i between gates i-1 and
i. A step's possible slots run from just after its newest gate ancestor to just before its
oldest gate descendant. When the gates form a chain, two steps whose slot ranges do not meet
are ordered in every execution; steps whose ranges meet may overlap (a conservative reading:
a direct edge between them is not taken into account).

Checks: ids unique and `after` pointing backwards (list order is topological), gates chained,
each node's steps ordered, control-plane steps alone in their slots, at most max-unavailable
workers cordoned, and every set of nodes cordoned together within PDB budgets and capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubehop.core.workloads import WaveLoad, WorkloadIndex
from kubehop.model.plan import Step, StepKind


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant a plan breaks, at a step."""

    step: str
    invariant: str
    message: str

    def __str__(self) -> str:
        return f"step {self.step}: {self.invariant}: {self.message}"


@dataclass(slots=True)
class Slots:
    """Slot range per step (by position), the positions each step waits for, gate count."""

    first: list[int]
    last: list[int]
    gates: int
    deps: list[tuple[int, ...]]


def slot_ranges(steps: Sequence[Step], out: list[Violation]) -> Slots | None:
    """Compute slot ranges; None (with violations) when the DAG itself is malformed."""
    position: dict[str, int] = {}
    gate_no: dict[int, int] = {}
    n = len(steps)
    anc = [-1] * n
    deps: list[tuple[int, ...]] = [()] * n
    gate_kind = StepKind.GATE
    for i, s in enumerate(steps):
        if s.id in position:
            out.append(Violation(s.id, "plan", "duplicate step id"))
            return None
        try:
            d = tuple(position[dep] for dep in s.after)
        except KeyError as e:
            out.append(Violation(s.id, "plan", f"waits for {e.args[0]}, which is not an earlier "
                                               f"step of the plan"))
            return None
        a = -1
        for j in d:
            g = gate_no.get(j)
            v = g if g is not None else anc[j]
            if v > a:
                a = v
        anc[i] = a
        deps[i] = d
        position[s.id] = i
        if s.kind is gate_kind:
            k = len(gate_no)
            if k and a != k - 1:
                out.append(Violation(s.id, "plan", "gate does not come after the previous gate"))
                return None
            gate_no[i] = k
    gates = len(gate_no)
    desc = [gates] * n
    # Reverse list order: when step i is reached, every step after it is final.
    for i in range(n - 1, -1, -1):
        g = gate_no.get(i)
        v = g if g is not None else desc[i]
        for j in deps[i]:
            if v < desc[j]:
                desc[j] = v
    return Slots([a + 1 for a in anc], desc, gates, deps)


def check_concurrency(steps: Sequence[Step], slots: Slots, control_plane: set[str],
                      max_unavailable: int, index: WorkloadIndex, out: list[Violation]) -> int:
    """Node order, control planes alone, cordon windows; returns the most workers cordoned."""
    first, last = slots.first, slots.last
    # Each node's steps are ordered (an edge to the previous one, or a gate between them).
    previous: dict[str, int] = {}
    on_cp: list[int] = []
    others: list[int] = []
    for i, s in enumerate(steps):
        node = s.node
        if node is None:
            continue
        p = previous.get(node)
        if p is not None and not last[p] < first[i] and steps[p].id not in s.after:
            out.append(Violation(s.id, "node order", f"may run before {steps[p].id} on node "
                                                     f"{node}"))
        previous[node] = i
        (on_cp if node in control_plane else others).append(i)
    # Control-plane nodes change one at a time, with nothing else going on.
    owner: dict[int, str] = {}
    for i in on_cp:
        node = steps[i].node or ""
        for slot in range(first[i], last[i] + 1):
            other = owner.setdefault(slot, node)
            if other != node:
                out.append(Violation(steps[i].id, "one control plane at a time",
                                     f"control-plane nodes {other} and {node} may change "
                                     f"at the same time"))
                return 0
    cp_slots = [0] * (slots.gates + 2)
    for slot in owner:
        cp_slots[slot + 1] = 1
    for k in range(1, len(cp_slots)):
        cp_slots[k] += cp_slots[k - 1]
    for i in others:
        if cp_slots[last[i] + 1] - cp_slots[first[i]]:
            busy = next(owner[k] for k in range(first[i], last[i] + 1) if k in owner)
            out.append(Violation(steps[i].id, "control planes alone",
                                 f"may run while control-plane node {busy} changes"))
            return 0
    return _cordon_windows(steps, slots, control_plane, max_unavailable, index, out)


def _cordon_windows(steps: Sequence[Step], slots: Slots, control_plane: set[str],
                    max_unavailable: int, index: WorkloadIndex, out: list[Violation]) -> int:
    first, last = slots.first, slots.last
    open_at: dict[str, int] = {}
    windows: list[tuple[int, int, str, str]] = []  # (from slot, to slot, node, cordon step)
    for i, s in enumerate(steps):
        if s.kind is StepKind.CORDON and s.node is not None:
            open_at[s.node] = i
        elif s.kind is StepKind.UNCORDON and s.node in open_at:
            c = open_at.pop(s.node)
            windows.append((first[c], last[i], s.node, steps[c].id))
    for node, c in open_at.items():
        out.append(Violation(steps[c].id, "nothing left cordoned",
                             f"node {node} is cordoned and never uncordoned"))
        windows.append((first[c], slots.gates, node, steps[c].id))
    if not windows:
        return 0
    starts: dict[int, list[tuple[str, str]]] = {}
    ends: dict[int, list[str]] = {}
    for lo, hi, node, step_id in windows:
        starts.setdefault(lo, []).append((node, step_id))
        ends.setdefault(hi + 1, []).append(node)
    active = WaveLoad(index)
    workers = most = 0
    for slot in sorted(set(starts) | set(ends)):
        for node in ends.get(slot, ()):
            active.remove(node)
            workers -= node not in control_plane
        added = starts.get(slot, ())
        for node, _ in added:
            active.add(node)
            workers += node not in control_plane
        if not added:
            continue
        most = max(most, workers)
        where = added[-1][1]
        if workers > max_unavailable:
            out.append(Violation(where, "max unavailable",
                                 f"{workers} worker nodes may be cordoned at once "
                                 f"(max {max_unavailable})"))
            return most
        for problem in active.violations():
            out.append(Violation(where, "drain together", problem))
            return most
    return most


def makespan(slots: Slots, cost: Sequence[float]) -> float:
    """The plan's duration when every step starts as soon as what it waits for is done."""
    finish = [0.0] * len(cost)
    end = 0.0
    for i, d in enumerate(slots.deps):
        start = max([finish[j] for j in d], default=0.0)
        f = finish[i] = start + cost[i]
        if f > end:
            end = f
    return end

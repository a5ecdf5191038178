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

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, islice, repeat
from operator import and_, eq, is_not, ne, not_, or_

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
    """Slot range per step (by position) and gate count; and, gathered on the same pass for
    `check_concurrency`: runs of consecutive steps of one node, each waiting for the one before
    it, as (first, last position, on a control plane), which cover every step with a node; each
    (previous step of the node, step) pair without a direct edge; each (cordon, uncordon or
    None, node); and the plan's duration for the step costs given."""

    first: list[int]
    last: list[int]
    gates: int
    runs: list[tuple[int, int, bool]] = field(default_factory=list)
    unchained: list[tuple[int, int]] = field(default_factory=list)
    cordons: list[tuple[int, int | None, str]] = field(default_factory=list)
    makespan: float = 0.0


_NOTHING = object()


def slot_ranges(steps: Sequence[Step], out: list[Violation],
                control_plane: Collection[str] = frozenset(),
                cost: Sequence[float] | None = None) -> Slots | None:
    """Compute slot ranges; None (with violations) when the DAG itself is malformed. With
    `cost` (seconds per step), also the makespan: the plan's duration when every step starts as
    soon as what it waits for is done.

    Most steps wait for exactly the step before them (a node's steps in a wave, a wave after
    its gate): found in C, such "simple" steps are handled a segment at a time (slices, running
    sums and minimums); the others ("heads": gates, first steps, joins) one by one."""
    n = len(steps)
    cost = cost if cost is not None else [0.0] * n
    ids = [s.id for s in steps]
    position = dict(zip(ids, range(n), strict=True))
    end = n  # steps from `end` on are not examined: a duplicate id there
    if len(position) < n:
        position = {}
        for i, step_id in enumerate(ids):
            if step_id in position:
                end = i
                break
            position[step_id] = i
    afters = [s.after for s in steps]
    kinds = [s.kind for s in steps]
    nodes = [s.node for s in steps]
    gate_kind = StepKind.GATE
    # simple[i]: step i is not a gate and waits for exactly step i - 1.
    simple = list(map(and_, map(eq, afters, chain((None,), zip(ids))),
                      map(is_not, kinds, repeat(gate_kind))))
    heads = list(compress(range(end), map(not_, simple)))  # (step 0 is one)
    anc = [-1] * n  # per step: the number of its newest gate ancestor
    level = [-1] * n  # what a step passes on to its dependants: a gate its number, others anc
    finish = [0.0] * n
    head_deps: dict[int, tuple[int, ...]] = {}
    gate_no: dict[int, int] = {}
    gates = 0
    for h, i in enumerate(heads):
        d = []
        for dep in afters[i]:
            j = position.get(dep, i)
            if j >= i:
                out.append(Violation(ids[i], "plan", f"waits for {dep}, which is not an earlier "
                                                     f"step of the plan"))
                return None
            d.append(j)
        head_deps[i] = deps = tuple(d)
        a = anc[i] = max(map(level.__getitem__, deps)) if deps else -1
        finish[i] = (max(map(finish.__getitem__, deps)) if deps else 0.0) + cost[i]
        if kinds[i] is gate_kind:
            if gates and a != gates - 1:
                out.append(Violation(ids[i], "plan", "gate does not come after the previous "
                                                     "gate"))
                return None
            level[i] = gate_no[i] = gates
            gates += 1
        else:
            level[i] = a
        e = heads[h + 1] if h + 1 < len(heads) else end  # the simple steps i+1 .. e-1
        if e > i + 1:
            anc[i + 1:e] = level[i + 1:e] = [level[i]] * (e - i - 1)
            finish[i + 1:e] = islice(accumulate(cost[i + 1:e], initial=finish[i]), 1, None)
    if end < n:
        out.append(Violation(ids[end], "plan", "duplicate step id"))
        return None
    desc = [gates] * n
    # Reverse list order: when a step is reached, every step after it is final.
    for h in range(len(heads) - 1, -1, -1):
        i = heads[h]
        e = heads[h + 1] if h + 1 < len(heads) else n
        if e > i + 1:  # simple steps: each passes its own on to the one before
            desc[i:e] = list(accumulate(reversed(desc[i:e]), min))[::-1]
        g = gate_no.get(i)
        v = g if g is not None else desc[i]
        for j in head_deps[i]:
            if v < desc[j]:
                desc[j] = v
    # Runs of one node: they start at each head and wherever the node changes.
    runs: list[tuple[int, int, bool]] = []
    unchained: list[tuple[int, int]] = []
    previous: dict[str, int] = {}  # node → its latest step before the current run
    run_node: str | None = None
    run_start = 0
    for i in compress(range(n), map(or_, map(not_, simple),
                                    map(ne, nodes, chain((_NOTHING,), nodes)))):
        if run_node is not None:
            previous[run_node] = i - 1
            runs.append((run_start, i - 1, run_node in control_plane))
        run_node, run_start = nodes[i], i
        if run_node is not None:
            # Each node's steps are ordered: an edge to its previous one, or a gate between.
            p = previous.get(run_node)
            if p is not None and p not in head_deps.get(i, (i - 1,)):
                unchained.append((p, i))
    if run_node is not None:
        runs.append((run_start, n - 1, run_node in control_plane))
    cordon, uncordon = StepKind.CORDON, StepKind.UNCORDON
    open_at: dict[str, int] = {}  # node → its cordon step not yet uncordoned
    cordons: list[tuple[int, int | None, str]] = []
    for i in compress(range(n), map(frozenset((cordon, uncordon)).__contains__, kinds)):
        node = nodes[i]
        if node is None:
            continue
        if kinds[i] is cordon:
            open_at[node] = i
        elif node in open_at:
            cordons.append((open_at.pop(node), i, node))
    cordons += [(c, None, node) for node, c in open_at.items()]
    return Slots(list(map((1).__add__, anc)), desc, gates, runs, unchained, cordons,
                 max(chain((0.0,), finish)))


def check_concurrency(steps: Sequence[Step], slots: Slots, control_plane: set[str],
                      max_unavailable: int, index: WorkloadIndex, out: list[Violation]) -> int:
    """Node order, control planes alone, cordon windows; returns the most workers cordoned.
    `slots` must come from `slot_ranges` with the same `control_plane`."""
    first, last = slots.first, slots.last
    for p, i in slots.unchained:
        if not last[p] < first[i]:
            out.append(Violation(steps[i].id, "node order", f"may run before {steps[p].id} on "
                                                            f"node {steps[i].node}"))
    # Control-plane nodes change one at a time, with nothing else going on.
    owner: dict[int, str] = {}
    for start, end, on_cp in slots.runs:
        if not on_cp:
            continue
        for i in range(start, end + 1):
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
    # A run's steps all lie within [its smallest first slot, its largest last slot].
    for start, end, on_cp in slots.runs if owner else ():
        if on_cp or not (cp_slots[max(last[start:end + 1]) + 1]
                         - cp_slots[min(first[start:end + 1])]):
            continue
        for i in range(start, end + 1):
            if cp_slots[last[i] + 1] - cp_slots[first[i]]:
                busy = next(owner[k] for k in range(first[i], last[i] + 1) if k in owner)
                out.append(Violation(steps[i].id, "control planes alone",
                                     f"may run while control-plane node {busy} changes"))
                return 0
    windows: list[tuple[int, int, str, str]] = []  # (from slot, to slot, node, cordon step)
    for c, u, node in slots.cordons:
        if u is None:
            out.append(Violation(steps[c].id, "nothing left cordoned",
                                 f"node {node} is cordoned and never uncordoned"))
        windows.append((first[c], slots.gates if u is None else last[u], node, steps[c].id))
    return _cordon_windows(windows, control_plane, max_unavailable, index, out)


def _cordon_windows(windows: list[tuple[int, int, str, str]], control_plane: set[str],
                    max_unavailable: int, index: WorkloadIndex, out: list[Violation]) -> int:
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

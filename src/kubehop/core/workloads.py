"""What draining a set of nodes at once does to workloads: PodDisruptionBudgets and capacity.

Built once per plan from the observed pods (150,000 pods index in well under a second) and used
twice: by the wave builder (which nodes may drain together) and by the simulator (which checks
every set of nodes a plan may have cordoned at the same time).

Rules:
- A drain evicts every pod but DaemonSet pods, mirror (static) pods and finished pods; pods
  being deleted count (kubehop.core.drain.rules.drain_evicts, after kubectl pkg/drain/filters.go).
- PDBs: draining nodes together evicts their pods together; a wave may hold two nodes with pods
  of one PDB only when all those pods fit in the budget (`disruptionsAllowed`). A single node is
  always allowed: kubectl retries a 429 eviction until replacements are Ready.
- Capacity (aggregate, ignoring taints, affinity and fragmentation): the evicted pods' requests
  must fit in the allocatable of the schedulable nodes left. Receivers are the schedulable
  workers (kubeadm taints control-plane nodes NoSchedule); a cluster without workers schedules
  on its control-plane nodes. A dimension whose allocatable is unknown (0) is not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import methodcaller

from kubehop.core.drain.rules import FINISHED, drain_evicts
from kubehop.model.cluster import ClusterState, PdbInfo

Vec = tuple[int, int, int]  # millicores, bytes, pods
ZERO: Vec = (0, 0, 0)


def _add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


@dataclass(slots=True)
class NodeLoad:
    """One node's pods, as a drain sees them."""

    evictable: int = 0
    evicted: Vec = ZERO  # requests of the pods a drain removes
    staying: Vec = ZERO  # requests of DaemonSet and mirror pods (they stay)
    pdb_pods: dict[str, int] = field(default_factory=dict)  # PDB key → evictable pods covered
    empty_dir: tuple[str, ...] = ()  # evictable pods with emptyDir volumes (data lost)
    bare: tuple[str, ...] = ()  # evictable pods without a controller (not recreated)
    primaries: tuple[str, ...] = ()  # CloudNativePG clusters whose primary runs here


_EMPTY = NodeLoad()
# (node, phase, owner kind, mirror, emptyDir, cpu request, memory request) of a pod.
_Facts = tuple[str | None, str, str | None, bool, bool, int, int]


def _covering(pdbs: Iterable[PdbInfo], budgets: dict[str, int]) -> dict[str, tuple[str, ...]]:
    """PDB keys by pod key (`ns/name`: namespaces never hold "/"), in PDB order, a key once per
    listing; fills in `budgets`. (Usually each pod is listed once: one update per PDB.)"""
    covering: dict[str, tuple[str, ...]] = {}
    for pdb in pdbs:
        key = pdb.key
        budgets[key] = max(0, pdb.disruptions_allowed)
        size = len(covering)
        covering.update(zip(pdb.pods, repeat((key,))))
        if len(covering) - size != len(pdb.pods) or not all(map(_has_slash, pdb.pods)):
            break
    else:
        return covering
    covering.clear()  # a pod listed twice (or a key without "/"): count each listing
    for pdb in pdbs:
        key = pdb.key
        budgets[key] = max(0, pdb.disruptions_allowed)
        for pod in pdb.pods:
            ns, _, name = pod.partition("/")
            ident = f"{ns}/{name}"  # (the pod key partition reads back)
            covering[ident] = (*covering.get(ident, ()), key)
    return covering


_has_slash = methodcaller("__contains__", "/")


class WorkloadIndex:
    """Pods per node, PDB budgets and cluster capacity, indexed for wave decisions."""

    def __init__(self, state: ClusterState) -> None:
        self.loads: dict[str, NodeLoad] = {}
        pods = state.pods
        # Each pod's drain-relevant facts as a tuple of plain values; equal tuples are counted
        # in C (150,000 pods make a few distinct tuples per node), in order of first appearance.
        facts = [(p.node, p.phase, p.owner_kind, p.mirror, p.empty_dir, p.requests.cpu_milli,
                  p.requests.memory) for p in pods]
        acc: dict[str, list[int]] = {}  # node → [cpu, mem, pods evicted, cpu, mem, pods staying]
        evictable: set[_Facts] = set()
        special = False  # an evictable pod with emptyDir data or without a controller
        for fact, n in Counter(facts).items():
            node, phase, kind, mirror, empty_dir, cpu, mem = fact
            if node is None or phase in FINISHED:
                continue  # finished pods hold no room and use no budget
            rec = acc.get(node)
            if rec is None:
                rec = acc[node] = [0, 0, 0, 0, 0, 0]
            if not drain_evicts(daemonset=kind == "DaemonSet", mirror=mirror, phase=phase):
                rec[3] += cpu * n
                rec[4] += mem * n
                rec[5] += n
                continue
            rec[0] += cpu * n
            rec[1] += mem * n
            rec[2] += n
            evictable.add(fact)
            special = special or empty_dir or kind is None
        empty: dict[str, list[str]] = {}
        bare: dict[str, list[str]] = {}
        if special:  # (rare) a second pass for their names, in pod order
            for p, f in zip(pods, facts, strict=True):
                if (f[4] or f[2] is None) and f in evictable:
                    if f[4]:
                        empty.setdefault(str(f[0]), []).append(p.key)
                    if f[2] is None:
                        bare.setdefault(str(f[0]), []).append(p.key)
        pdb_counts = self._count_pdb_pods(state, facts, evictable)
        loads = self.loads
        for node, rec in acc.items():
            loads[node] = NodeLoad(rec[2], (rec[0], rec[1], rec[2]), (rec[3], rec[4], rec[5]),
                                   pdb_counts.get(node, {}), tuple(empty.get(node, ())),
                                   tuple(bare.get(node, ())))
        for db in state.databases:
            if db.primary_node:
                load = loads.setdefault(db.primary_node, NodeLoad())
                load.primaries = (*load.primaries, f"{db.namespace}/{db.name}")
        self.single_instance = {f"{d.namespace}/{d.name}" for d in state.databases
                                if d.instances <= 1}

        workers = [n for n in state.nodes if not n.is_control_plane]
        pool = workers or list(state.nodes)
        self.receivers = {n.name for n in pool if n.schedulable}
        self.alloc: dict[str, Vec] = {
            n.name: (n.allocatable.cpu_milli, n.allocatable.memory, n.allocatable.pods)
            for n in state.nodes}
        supply = ZERO
        for name in self.receivers:
            supply = _add(supply, self.alloc[name])
        demand = ZERO
        for name in self.receivers:
            load = loads.get(name, _EMPTY)
            demand = _add(demand, _add(load.evicted, load.staying))
        self.supply = supply
        self.demand = demand
        self.checked = tuple(s > 0 for s in supply)  # dimensions with known allocatable
        # Some clusters already run more than fits: never demand better than the start.
        self.slack = tuple(max(0, d - s) for d, s in zip(demand, supply, strict=True))
        # What a set of drained nodes misses is base + demand delta + supply lost (see WaveLoad).
        self.base: Vec = tuple(  # type: ignore[assignment]
            d - s - k for d, s, k in zip(demand, supply, self.slack, strict=True))

    def _count_pdb_pods(self, state: ClusterState, facts: list[_Facts],
                        evictable: set[_Facts]) -> dict[str, dict[str, int]]:
        """Sets the budgets; per node, how many of its evictable pods each PDB covers (keys in
        order of first appearance by pod, then PDB)."""
        self.budgets: dict[str, int] = {}
        covering = _covering(state.pdbs, self.budgets)
        out: dict[str, dict[str, int]] = {}
        if not covering:
            return out
        cover = covering.get
        keys_of = [cover(f"{p.namespace}/{p.name}") for p in state.pods]
        covered = list(compress(facts, keys_of))
        for keys, f, ok in zip(compress(keys_of, keys_of), covered,
                               map(evictable.__contains__, covered), strict=False):
            if ok:
                node = str(f[0])
                counts = out.get(node)
                if counts is None:
                    counts = out[node] = {}
                for key in keys:  # type: ignore[union-attr]
                    counts[key] = counts.get(key, 0) + 1
        return out

    def load(self, node: str) -> NodeLoad:
        return self.loads.get(node, _EMPTY)


_DIMENSIONS = ("cpu", "memory", "pods")


class WaveLoad:
    """A set of nodes drained together, built incrementally; checks PDBs and capacity.

    PDB counts are kept from two nodes on: one node alone breaks no budget (the simulator's
    cordon windows with max-unavailable 1 then never count)."""

    def __init__(self, index: WorkloadIndex) -> None:
        self.index = index
        self.nodes: list[str] = []
        self._supply_lost = ZERO
        self._demand_delta = ZERO  # staying pods of drained receivers leave, evicted elsewhere add
        self._pdb_pods: dict[str, int] = {}
        self._pdb_nodes: dict[str, int] = {}
        self._over: set[str] = set()  # PDBs beyond their budget in this set

    def _delta(self, node: str) -> tuple[Vec, Vec]:
        load = self.index.load(node)
        if node in self.index.receivers:
            return self.index.alloc[node], _sub(ZERO, load.staying)
        return ZERO, load.evicted

    def shortfall(self, extra: str | None = None) -> Vec:
        """How much the evicted pods miss, per dimension, beyond the starting shortfall."""
        lost, delta = self._supply_lost, self._demand_delta
        if extra is not None:
            a, b = self._delta(extra)
            lost, delta = _add(lost, a), _add(delta, b)
        # demand + delta - (supply - lost) - slack, per dimension
        b0, b1, b2 = self.index.base
        c0, c1, c2 = self.index.checked
        n0, n1, n2 = b0 + delta[0] + lost[0], b1 + delta[1] + lost[1], b2 + delta[2] + lost[2]
        return (n0 if c0 and n0 > 0 else 0, n1 if c1 and n1 > 0 else 0,
                n2 if c2 and n2 > 0 else 0)

    def pdb_conflict(self, node: str) -> str | None:
        """The PDB that `node` would push beyond its budget in this wave, or None."""
        budgets = self.index.budgets
        pods = self.index.load(node).pdb_pods
        if len(self.nodes) == 1:
            alone = self.index.load(self.nodes[0]).pdb_pods
            for key, count in pods.items():
                other = alone.get(key, 0)
                if other and other + count > budgets[key]:
                    return key
            return None
        for key, count in pods.items():
            if self._pdb_nodes.get(key, 0) and self._pdb_pods.get(key, 0) + count > budgets[key]:
                return key
        return None

    def fits(self, node: str) -> bool:
        return self.pdb_conflict(node) is None and self.shortfall(node) == ZERO

    def add(self, node: str) -> None:
        (a0, a1, a2), (b0, b1, b2) = self._delta(node)
        lost, delta = self._supply_lost, self._demand_delta
        self._supply_lost = (lost[0] + a0, lost[1] + a1, lost[2] + a2)
        self._demand_delta = (delta[0] + b0, delta[1] + b1, delta[2] + b2)
        self.nodes.append(node)
        if len(self.nodes) == 2:
            self._count(self.nodes[0], 1)
        if len(self.nodes) >= 2:
            self._count(node, 1)

    def remove(self, node: str) -> None:
        (a0, a1, a2), (b0, b1, b2) = self._delta(node)
        lost, delta = self._supply_lost, self._demand_delta
        self._supply_lost = (lost[0] - a0, lost[1] - a1, lost[2] - a2)
        self._demand_delta = (delta[0] - b0, delta[1] - b1, delta[2] - b2)
        if len(self.nodes) >= 2:
            self._count(node, -1)
        self.nodes.remove(node)
        if len(self.nodes) == 1:
            self._count(self.nodes[0], -1)

    def _count(self, node: str, sign: int) -> None:
        budgets = self.index.budgets
        pdb_pods, pdb_nodes, over = self._pdb_pods, self._pdb_nodes, self._over
        for key, count in self.index.load(node).pdb_pods.items():
            nodes = pdb_nodes.get(key, 0) + sign
            if nodes:
                pods = pdb_pods[key] = pdb_pods.get(key, 0) + sign * count
                pdb_nodes[key] = nodes
                if nodes >= 2 and pods > budgets[key]:
                    over.add(key)
                    continue
            else:
                pdb_pods.pop(key, None)
                del pdb_nodes[key]
            over.discard(key)

    def violations(self) -> list[str]:
        """What is wrong with this set as a whole (for the simulator's messages)."""
        short = self.shortfall()
        if not self._over and short == ZERO:
            return []
        out = []
        budgets = self.index.budgets
        for key in sorted(self._over):
            out.append(f"PodDisruptionBudget {key} would lose {self._pdb_pods[key]} pods on "
                       f"{self._pdb_nodes[key]} nodes at once; it allows {budgets[key]}")
        for name, missing in zip(_DIMENSIONS, short, strict=True):
            if missing:
                out.append(f"evicted pods need {format_amount(name, missing)} more {name} than "
                           f"the schedulable nodes left offer")
        return out


def format_amount(dimension: str, value: int) -> str:
    """Human units: millicores, MiB, pods."""
    if dimension == "cpu":
        return f"{value}m"
    if dimension == "memory":
        return f"{value / 2**20:.0f}Mi"
    return str(value)


def describe_shortfall(short: Vec) -> str:
    return ", ".join(f"{format_amount(n, v)} {n}" for n, v in
                     zip(_DIMENSIONS, short, strict=True) if v)


def _cannot_drain(node: str, short: Vec) -> str:
    return (f"cannot drain node {node}: its evicted pods need {describe_shortfall(short)} more "
            f"than the other schedulable nodes offer")


def build_waves(nodes: Iterable[str], limit: int, index: WorkloadIndex,
                scan: int | None = None) -> list[list[str]]:
    """Group `nodes` (in order) into waves of at most `limit` that respect PDBs and capacity.

    Greedy: each wave takes the next nodes that fit; a node that does not fit waits for a later
    wave. The scan stops after `scan` consecutive misfits (bounded work on 5,000 nodes; default
    twice the wave size, at least 64: the scheduler puts a Deployment's pods on neighbouring
    nodes, so a wave full for one PDB must look past them — 64 left the waves of a 1,000-node
    lab half full); a node that fits no wave alone raises ValueError naming it.
    """
    scan = max(64, 2 * limit) if scan is None else scan
    pending = list(nodes)
    waves: list[list[str]] = []
    if limit == 1:  # one node per wave: only capacity can stand in the way
        (b0, b1, b2), (c0, c1, c2) = index.base, index.checked
        for node in pending:  # (`WaveLoad(index).shortfall(node)`, inlined)
            if node in index.receivers:
                (a0, a1, a2), (s0, s1, s2) = index.alloc[node], index.load(node).staying
                n0, n1, n2 = b0 + a0 - s0, b1 + a1 - s1, b2 + a2 - s2
            else:
                e0, e1, e2 = index.load(node).evicted
                n0, n1, n2 = b0 + e0, b1 + e1, b2 + e2
            if (c0 and n0 > 0) or (c1 and n1 > 0) or (c2 and n2 > 0):
                raise ValueError(_cannot_drain(node, WaveLoad(index).shortfall(node)))
        return [[node] for node in pending]
    while pending:
        wave = WaveLoad(index)
        rest: list[str] = []
        misses = 0
        i = 0
        while i < len(pending):
            node = pending[i]
            i += 1
            if len(wave.nodes) < limit and misses < scan and wave.fits(node):
                wave.add(node)
                misses = 0
            else:
                if wave.nodes:
                    misses += 1
                rest.append(node)
            if len(wave.nodes) >= limit or misses >= scan:
                rest.extend(pending[i:])
                break
        if not wave.nodes:
            raise ValueError(_cannot_drain(pending[0], wave.shortfall(pending[0])))
        waves.append(wave.nodes)
        pending = rest
    return waves

"""Checks of what draining the nodes will meet (`drain.*`) and whether the rest of the cluster can
hold each node's pods meanwhile (`capacity.*`).

Drain rules follow kubectl's filters (pkg/drain/filters.go, kubehop.core.drain.rules.drain_evicts):
DaemonSet and mirror pods stay, pods being deleted count, pods without a controller or with
emptyDir data need an override; the Eviction API refuses a pod matched by more than one PDB and
any eviction a PDB's budget does not allow. A CloudNativePG primary is switched over by its
operator when its node is cordoned, so its PDB does not block, unless the cluster has a single
instance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from kubehop.core.checks.common import capped, nodes_text
from kubehop.core.drain.rules import drain_evicts
from kubehop.model.cluster import ClusterState, PodInfo, Resources
from kubehop.model.findings import Finding, Severity

SHOWN = 10  # per-pod findings of one kind before they are summarised


def evictable(pod: PodInfo) -> bool:
    """Whether a drain evicts this pod (kubehop.core.drain.rules.drain_evicts: pods being deleted
    count, the drain waits for them)."""
    return drain_evicts(daemonset=pod.daemonset, mirror=pod.mirror, phase=pod.phase)


def drain_findings(state: ClusterState) -> list[Finding]:
    """PDBs that block, databases without a replica, pods a drain refuses."""
    out = _pdb_findings(state)
    out += _database_findings(state)
    out += _pod_findings(state)
    return out


def _pdb_findings(state: ClusterState) -> list[Finding]:
    nodes_of = {p.key: p.node for p in state.pods}
    cnpg = {f"Cluster/{d.name}": d for d in state.databases}
    covering: dict[str, list[str]] = defaultdict(list)
    out = []
    for pdb in state.pdbs:
        for pod in pdb.pods:
            covering[pod].append(pdb.key)
        nodes = sorted({n for p in pdb.pods if (n := nodes_of.get(p))})
        where = f" on {nodes_text(nodes)}" if nodes else ""
        if pdb.owner in cnpg and pdb.namespace == cnpg[pdb.owner].namespace:
            continue  # the operator switches over; a single instance is reported below
        if pdb.expected > 0 and pdb.desired_healthy >= pdb.expected:
            out.append(Finding(
                "drain.pdb-never-allows", Severity.BLOCKING, f"pdb/{pdb.key}",
                f"PodDisruptionBudget {pdb.key} needs all {pdb.expected} of its pods healthy "
                f"(desired {pdb.desired_healthy}): no eviction can pass, so draining the "
                f"nodes{where} would wait forever",
                f"relax {pdb.key} (e.g. maxUnavailable: 1) or scale its workload up before "
                f"the upgrade",
            ))
        elif pdb.expected > 0 and pdb.disruptions_allowed <= 0:
            out.append(Finding(
                "drain.pdb-no-disruptions-now", Severity.WARNING, f"pdb/{pdb.key}",
                f"PodDisruptionBudget {pdb.key} allows no disruption right now "
                f"({pdb.current_healthy} healthy, {pdb.desired_healthy} needed): draining the "
                f"nodes{where} waits until it does",
                f"make the unhealthy pods of {pdb.key} ready again before the upgrade",
            ))
    for pod, pdbs in sorted(covering.items()):
        if len(pdbs) > 1:
            out.append(Finding(
                "drain.pod-multiple-pdbs", Severity.BLOCKING, f"pod/{pod}",
                f"pod {pod} is matched by {len(pdbs)} PodDisruptionBudgets ({', '.join(pdbs)}): "
                f"the Eviction API refuses to evict it (500)",
                "change the PDB selectors so that each pod has at most one",
            ))
    return out


def _database_findings(state: ClusterState) -> list[Finding]:
    guarded = {pdb.owner for pdb in state.pdbs if pdb.owner}
    out = []
    for db in state.databases:
        if db.instances != 1:
            continue
        where = f" on node {db.primary_node}" if db.primary_node else ""
        key = f"{db.namespace}/{db.name}"
        if f"Cluster/{db.name}" in guarded:
            out.append(Finding(
                "drain.single-instance-database", Severity.BLOCKING, f"cluster/{key}",
                f"CloudNativePG cluster {key} has a single instance{where}: there is no replica "
                f"to switch over to, so its PodDisruptionBudget blocks the drain of its node",
                f"add a replica (spec.instances: 2) before the upgrade, or accept downtime and "
                f"set spec.enablePDB: false on {key} for the upgrade",
            ))
        else:
            out.append(Finding(
                "drain.single-instance-database", Severity.WARNING, f"cluster/{key}",
                f"CloudNativePG cluster {key} has a single instance{where} and no "
                f"PodDisruptionBudget: draining its node stops the database until it restarts "
                f"elsewhere",
                f"add a replica (spec.instances: 2) to {key} to avoid the downtime",
            ))
    return out


def _pod_findings(state: ClusterState) -> list[Finding]:
    """Bare pods one by one; emptyDir pods one finding per controller."""
    bare: list[Finding] = []
    local: dict[str, list[PodInfo]] = defaultdict(list)
    for p in state.pods:
        if not evictable(p) or p.node is None:
            continue
        if p.owner_kind is None:
            bare.append(Finding(
                "drain.pod-without-controller", Severity.WARNING, f"pod/{p.key}",
                f"pod {p.key} on node {p.node} has no controller: a drain deletes it for good "
                f"(kubectl drain refuses without --force)",
                f"recreate {p.key} under a Deployment or StatefulSet, or delete it before the "
                f"upgrade",
            ))
        if p.empty_dir:
            owner = f"{p.owner_kind}/{p.namespace}/{p.owner_name}" if p.owner_kind else \
                f"Pod/{p.key}"
            local[owner].append(p)
    emptydir = []
    for owner, pods in sorted(local.items()):
        kind, _, key = owner.partition("/")
        what = f"pod {pods[0].key} on node {pods[0].node}" if kind == "Pod" else \
            f"{_count(len(pods), 'pod')} of {kind} {key}"
        emptydir.append(Finding(
            "drain.pod-local-storage", Severity.WARNING, f"{kind.lower()}/{key}",
            f"{what} keep{'s' if len(pods) == 1 else ''} data in emptyDir volumes, lost when a "
            f"drain evicts {'it' if len(pods) == 1 else 'them'} (kubectl drain refuses without "
            f"--delete-emptydir-data)",
            f"make sure that data of {kind} {key} may be lost, or move it to a persistent "
            f"volume",
        ))
    return (capped(bare, SHOWN, lambda n: Finding(
        "drain.pod-without-controller", Severity.WARNING, "pods",
        f"{n} more pods have no controller", "see the pods above")) +
        capped(emptydir, SHOWN, lambda n: Finding(
            "drain.pod-local-storage", Severity.WARNING, "pods",
            f"{n} more workloads keep data in emptyDir volumes", "see the workloads above")))


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- capacity ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Room:
    cpu: int = 0
    memory: int = 0
    pods: int = 0

    def add(self, r: Resources, sign: int = 1) -> None:
        self.cpu += sign * r.cpu_milli
        self.memory += sign * r.memory
        self.pods += sign * r.pods


def capacity_findings(state: ClusterState) -> list[Finding]:
    """Nodes whose evicted pods the remaining schedulable nodes cannot hold (requests against
    free allocatable, summed; workers' pods go to workers, as control-plane nodes are tainted)."""
    used: dict[str, _Room] = defaultdict(_Room)
    evicted: dict[str, _Room] = defaultdict(_Room)
    largest: dict[str, Resources] = {}
    for p in state.pods:
        if p.node is None or p.terminal:
            continue
        used[p.node].add(p.requests)
        if evictable(p):
            evicted[p.node].add(p.requests)
            big = largest.get(p.node)
            if big is None or (p.requests.cpu_milli, p.requests.memory) > (big.cpu_milli,
                                                                          big.memory):
                largest[p.node] = p.requests
    free: dict[str, _Room] = {}
    for n in state.nodes:
        room = _Room()
        room.add(n.allocatable)
        room.add(Resources(used[n.name].cpu, used[n.name].memory, used[n.name].pods), -1)
        free[n.name] = room
    usable = {n.name for n in state.nodes if n.ready and n.schedulable}
    workers = {n.name for n in state.worker_nodes} & usable
    totals = {"workers": _total(free, workers), "all": _total(free, usable)}
    by_cpu = {"workers": sorted(workers, key=lambda m: -free[m].cpu),
              "all": sorted(usable, key=lambda m: -free[m].cpu)}
    out = []
    for n in state.nodes:
        need = evicted.get(n.name)
        if need is None or need.pods == 0:
            continue
        pool_name = "workers" if not n.is_control_plane and workers - {n.name} else "all"
        pool = workers if pool_name == "workers" else usable
        room = _Room(totals[pool_name].cpu, totals[pool_name].memory, totals[pool_name].pods)
        if n.name in pool:
            own = free[n.name]
            room.add(Resources(max(0, own.cpu), max(0, own.memory), max(0, own.pods)), -1)
        big = largest.get(n.name, Resources())
        fits_big = _fits(big, by_cpu[pool_name], free, n.name)
        if room.cpu >= need.cpu and room.memory >= need.memory and room.pods >= need.pods \
                and fits_big:
            continue
        kind = "schedulable workers" if pool_name == "workers" else "schedulable nodes"
        out.append(Finding(
            "capacity.insufficient", Severity.BLOCKING, f"node/{n.name}",
            f"the other {kind} cannot hold the {need.pods} pods a drain of node {n.name} "
            f"evicts: they request {_cpu(need.cpu)} CPU and {_mem(need.memory)} memory, "
            f"{_cpu(max(0, room.cpu))} CPU, {_mem(max(0, room.memory))} and "
            f"{max(0, room.pods)} pod slots are free"
            + ("" if fits_big else f" (no node fits its largest pod, {_cpu(big.cpu_milli)} "
                                   f"CPU / {_mem(big.memory)})"),
            f"add a node or free capacity before upgrading node {n.name}",
        ))
    return capped(out, SHOWN, lambda k: Finding(
        "capacity.insufficient", Severity.BLOCKING, "nodes",
        f"{k} more nodes cannot be drained for lack of room elsewhere",
        "add nodes or free capacity before the upgrade"))


def _fits(pod: Resources, candidates: list[str], free: dict[str, _Room], skip: str) -> bool:
    """Whether some candidate (sorted by free CPU, most first) has room for `pod`."""
    for m in candidates:
        if m == skip:
            continue
        if free[m].cpu < pod.cpu_milli:
            return False
        if free[m].memory >= pod.memory and free[m].pods >= 1:
            return True
    return False


def _total(free: dict[str, _Room], names: set[str]) -> _Room:
    total = _Room()
    for name in names:
        r = free[name]
        total.cpu += max(0, r.cpu)
        total.memory += max(0, r.memory)
        total.pods += max(0, r.pods)
    return total


def _cpu(milli: int) -> str:
    return f"{milli / 1000:g}" if milli % 1000 == 0 else f"{milli}m"


def _mem(value: int) -> str:
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value >= size:
            return f"{value / size:.1f}{unit}".replace(".0" + unit, unit)
    return str(value)

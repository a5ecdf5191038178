"""Benchmark: planning (and simulating) the upgrade of a 5,000-node cluster.

    .venv/bin/python bench/plan_bench.py [--nodes 5000] [--pods-per-node 30] [--append]

Prints the time to build the ClusterState (the baseline, measured in the same process), the
median of 5 runs of `plan_upgrade` (which runs the simulator on the plan it made), their ratio,
and the median of 5 runs with the planner's and simulator's memos off (`memo=False`) with the
ratio memo-on / memo-off, both measured in this process. Target: planning 5,000 nodes / 150,000
pods with PDBs in under 1 s (median of 5). `--append` adds a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import date
from pathlib import Path

import netguard  # noqa: F401  (nothing leaves loopback)
from kubehop.core.planner.make import plan_upgrade
from kubehop.data import load_release_data
from kubehop.model.cluster import (
    ApiServerInfo,
    ClusterState,
    DatabaseInfo,
    NodePackages,
    NodeState,
    OsFamily,
    PdbInfo,
    PodInfo,
    Resources,
)
from kubehop.model.plan import PlanOptions
from kubehop.model.versions import MinorVersion, parse_kube_version

V = parse_kube_version("v1.28.9")
CP_IMAGES = (*((c, f"registry.k8s.io/{c}:v1.28.9") for c in
                ("kube-apiserver", "kube-controller-manager", "kube-scheduler")),
             ("etcd", "registry.k8s.io/etcd:3.5.12-0"))


def build_state(nodes: int, pods_per_node: int, control_planes: int = 3) -> ClusterState:
    """An HA kubeadm v1.28.9 cluster: Debian and RHEL workers, Deployments with PDBs, a
    DaemonSet, CloudNativePG clusters."""
    node_list = []
    for i in range(nodes):
        cp = i < control_planes
        family = OsFamily.RHEL if i % 4 == 3 else OsFamily.DEBIAN
        pv = "1.28.9-150500.1.1" if family is OsFamily.RHEL else "1.28.9-1.1"
        node_list.append(NodeState(
            name=f"cp{i + 1}" if cp else f"w{i:05d}", roles=("control-plane",) if cp else (),
            kubelet=V, kube_proxy=V, control_plane_images=CP_IMAGES if cp else (),
            allocatable=Resources(16000, 64 * 2**30, 110),
            packages=NodePackages(family, pv, pv, pv, MinorVersion(1, 28), False,
                                  ("kubeadm", "kubelet", "kubectl"), V)))
    workers = [n.name for n in node_list[control_planes:]]
    pods: list[PodInfo] = []
    pdbs: list[PdbInfo] = []
    req = Resources(100, 128 * 2**20, 0)
    # One DaemonSet pod per node; the rest as Deployments of 10 replicas spread over nodes.
    for n in node_list:
        pods.append(PodInfo("monitoring", f"node-exporter-{n.name}", n.name, "DaemonSet",
                            "node-exporter"))
    replicas = 10
    per_node = pods_per_node - 1
    deployments = len(workers) * per_node // replicas
    for d in range(deployments):
        keys = []
        for r in range(replicas):
            node = workers[(d * 7 + r * 131) % len(workers)]
            name = f"app{d}-{r}"
            pods.append(PodInfo(f"ns{d % 50}", name, node, "ReplicaSet", f"app{d}-rs",
                                requests=req))
            keys.append(f"ns{d % 50}/{name}")
        if d % 3 == 0:
            pdbs.append(PdbInfo(f"ns{d % 50}", f"app{d}", tuple(keys), replicas, replicas - 1,
                                replicas, 1))
    dbs = tuple(DatabaseInfo("db", f"pg{i}", 3, f"pg{i}-1", workers[i * 97 % len(workers)])
                for i in range(20))
    return ClusterState(
        apiservers=tuple(ApiServerInfo(f"127.77.0.{i + 1}:6443", f"cp{i + 1}", V)
                         for i in range(control_planes)),
        nodes=tuple(node_list), kubeadm_kubernetes_version=V, pods=tuple(pods),
        pdbs=tuple(pdbs), databases=dbs, workloads_observed=True)


def timed(fn, *args, **kwargs):
    gc.collect()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def median_of(runs: int, fn, *args, **kwargs) -> float:
    """Median wall time of `runs` calls (after one warm-up call: caches, imports)."""
    fn(*args, **kwargs)
    return statistics.median(timed(fn, *args, **kwargs)[1] for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--max-unavailable", default="1")
    parser.add_argument("--runs", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    data = load_release_data()
    state, t_state = timed(build_state, args.nodes, args.pods_per_node)
    options = PlanOptions(max_unavailable=args.max_unavailable)
    small = build_state(args.nodes // 10, args.pods_per_node)
    t_small = median_of(args.runs, plan_upgrade, small, "1.30", data, options)
    rows = []
    for target in ("1.29", "1.30"):
        t = median_of(args.runs, plan_upgrade, state, target, data, options)
        plan = plan_upgrade(state, target, data, options)
        rows.append((target, len(plan.steps), len(plan.waves), t, plan.estimate_seconds))
    t_off = median_of(args.runs, plan_upgrade, state, "1.30", data, options, memo=False)
    same = plan_upgrade(state, "1.30", data, options, memo=False) == plan
    t_on = rows[-1][3]
    print(f"cluster: {args.nodes} nodes, {len(state.pods)} pods, {len(state.pdbs)} PDBs, "
          f"max-unavailable {args.max_unavailable}; medians of {args.runs} runs")
    print(f"baseline: build the ClusterState: {t_state:.3f} s")
    print(f"scaling: plan --to 1.30 for {args.nodes // 10} nodes: {t_small:.3f} s "
          f"(x10 = {10 * t_small:.3f} s)")
    for target, steps, waves, t, est in rows:
        print(f"plan --to {target}: {t:.3f} s ({steps} steps, {waves} waves, estimate "
              f"{est / 3600:.1f} h lab time); ratio to baseline {t / t_state:.2f}, to "
              f"{args.nodes // 10} nodes x10 {t / (10 * t_small):.2f}; "
              f"{'OK' if t < 1 else 'SLOW'} (target < 1 s)")
    print(f"memo off: plan --to 1.30: {t_off:.3f} s; memo on / off {t_on / t_off:.2f} "
          f"({t_off / t_on:.1f}x faster with memo); same plan: {same}")
    if args.append:
        lines = [
            "", f"## Planning {args.nodes:,} nodes, memo on and off (issue: one way through the "
            f"code, #18.4) — {date.today()}", "",
            f"Command: `.venv/bin/python bench/plan_bench.py --append` (medians of {args.runs} "
            f"runs, one process)", "",
            "| what | result | target |", "|---|---|---|",
            f"| baseline: build the ClusterState ({args.nodes:,} nodes, {len(state.pods):,} "
            f"pods, {len(state.pdbs):,} PDBs) | {t_state:.3f} s | — |",
            f"| `plan --to 1.30` for {args.nodes // 10:,} nodes, ×10 | {10 * t_small:.3f} s "
            f"| — |",
        ]
        for target, steps, waves, t, _ in rows:
            lines.append(f"| `plan --to {target}` from v1.28.9 (plan + simulation; {steps:,} "
                         f"steps, {waves:,} waves) | {t:.3f} s ({t / t_state:.2f}× baseline, "
                         f"{t / (10 * t_small):.2f}× the small plan ×10) | < 1 s |")
        lines.append(f"| `plan --to 1.30`, memo off (`plan_upgrade(..., memo=False)`; same "
                     f"plan: {same}) | {t_off:.3f} s (memo on / off = {t_on / t_off:.2f}) "
                     f"| — |")
        path = Path(__file__).with_name("RESULTS.md")
        path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: node operations per worker, and the makespan, with kubeadm jumping on workers
(the default) against kubeadm following every hop (`--strict-kubeadm-skew`, the old behaviour).

    .venv/bin/python bench/node_ops_bench.py [--nodes 20] [--pods 5] [--scale 0.1] [--append]

For a two-hop (v1.28.9 → 1.30) and a three-hop (→ 1.31) upgrade of `large:nodes=N`, each run
counts from the lab's history, per worker: package installs (`apt-get install`), `kubeadm upgrade
node` runs, drains (cordons) and kubelet restarts, against the minimum — one of each per kubelet
move (a kubelet restart at a new minor). Makespans are lab seconds of the same lab, same options
(`--max-unavailable 10%`); every history is judged with `check_history`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import Counter
from datetime import date
from typing import Any

from upgrade_bench import Run, publish, upgrade

import netguard  # noqa: F401  (nothing leaves loopback)
from kubehop.model.plan import PlanOptions

OPS = ("kubeadm installs", "kubelet installs", "kubeadm upgrade node", "drains",
       "kubelet restarts")


def _argv(e: dict[str, Any]) -> list[str]:
    argv = list(e["argv"])
    return argv[2:] if argv[:2] == ["sudo", "-n"] else argv


def worker_ops(events: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """(median operations per worker by kind, median kubelet moves per worker)."""
    control = {e["node"] for e in events if e["type"] == "node"
               and "control-plane" in (e.get("roles") or [])}
    counts: dict[str, Counter[str]] = {op: Counter() for op in OPS}
    moves: Counter[str] = Counter()
    schedulable: dict[str, bool] = {}
    workers: set[str] = set()
    for e in events:
        node = e.get("node")
        if node is None or node in control:
            continue
        if e["type"] == "node":
            workers.add(node)
            if schedulable.get(node, True) and not e["schedulable"]:
                counts["drains"][node] += 1
            schedulable[node] = e["schedulable"]
        elif e["type"] == "command" and e["exit_code"] == 0:
            argv = _argv(e)
            if argv[:1] in (["apt-get"], ["apt"], ["dnf"], ["yum"]) and "install" in argv:
                for package in ("kubeadm", "kubelet"):
                    if any(a.startswith((f"{package}=", f"{package}-")) for a in argv):
                        counts[f"{package} installs"][node] += 1
            elif argv[:3] == ["kubeadm", "upgrade", "node"]:
                counts["kubeadm upgrade node"][node] += 1
        elif e["type"] == "kubelet-restart":
            counts["kubelet restarts"][node] += 1
            if e["from"].split(".")[:2] != e["to"].split(".")[:2]:
                moves[node] += 1
    names = sorted(workers)
    return ({op: statistics.median(counts[op][n] for n in names) for op in OPS},
            statistics.median(moves[n] for n in names))


def line(name: str, run: Run) -> str:
    ops, moves = worker_ops(run.events)
    cells = " | ".join(f"{ops[op]:g}" for op in OPS)
    return (f"| {name} | {moves:g} | {cells} | {run.makespan:,.0f} s | "
            f"{len(run.violations)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--pods", type=int, default=5)
    ap.add_argument("--scale", type=float, default=0.1, help="real seconds per lab second")
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    rows = []
    for hops, target in (("two hops", "1.30"), ("three hops", "1.31")):
        for label, strict in (("kubeadm jumps (default)", False),
                              ("kubeadm every hop (--strict-kubeadm-skew)", True)):
            options = PlanOptions(max_unavailable="10%", strict_kubeadm_skew=strict)
            run = asyncio.run(upgrade(args.nodes, args.pods, args.scale, options, 256,
                                      target=target))
            rows.append(line(f"{hops}, {label}", run))
            print(rows[-1], flush=True)
    text = "\n".join([
        "",
        f"## Node operations per worker (issue: upgrade paths) — {date.today()}",
        "",
        f"Command: `.venv/bin/python bench/node_ops_bench.py --nodes {args.nodes} --pods "
        f"{args.pods} --scale {args.scale}`",
        "",
        f"`large:nodes={args.nodes},pods={args.pods}` from v1.28.9, `--max-unavailable 10%`; "
        "median per worker, counted in the lab's history (installs: `apt-get install` runs naming "
        "the package; drains: cordons); the minimum is one of each per kubelet move (a kubelet "
        "restart at a new minor).",
        "",
        "| run | kubelet moves (= the minimum of each operation) | " + " | ".join(OPS)
        + " | makespan | violations |",
        "|---|---|" + "---|" * len(OPS) + "---|---|",
        *rows,
        "",
    ])
    publish(text, args.append)


if __name__ == "__main__":
    main()

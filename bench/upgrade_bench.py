"""Benchmark: the makespan of a two-minor upgrade of the `large` lab, in lab time.

    .venv/bin/python bench/upgrade_bench.py [--nodes 100] [--pods 30] [--scale 0.5]
                                            [--guide-nodes 10] [--guide-scale 0.05] [--append]

Runs kubehop's executor (the one `kubehop apply` runs) in-process against a lab: the API over
HTTP, node commands straight to the lab's node agents (`tests/lab_transport.py`: 1,000 SSH
sessions would measure asyncssh on 2 cores, not the schedule). For `large:nodes=N`:

1. kubehop: v1.28.9 → v1.30.14, `--max-unavailable 10%` (workers skip 1.29);
2. the lower bound from that same run: control-plane time (its control-plane waves, measured)
   + worker waves × per-node time (the median worker's cordon → uncordon, measured);
3. the upstream guide's procedure: one node at a time, every minor (`--max-unavailable 1
   --worker-strategy every-minor`) on a fresh lab of `--guide-nodes` nodes, its makespan
   extrapolated to N nodes from its measured per-worker time (running it at N would take hours).

Lab time is only faithful while the process keeps up with it: lab, API and executor share one
event loop (one core), and a wave of 10% of the workers evicts and reschedules 30 pods per node.
At 100 nodes, `--scale 0.2` keeps the process 71% busy during the waves and drains take 3x
their lab time; at 0.5 (45% busy) a worker in a wave takes as long as a worker alone. The
"CPU in waves" column says whether a run was faithful. Every run's history is judged with
`check_history`. `--append` adds a section to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import netguard  # noqa: F401  (nothing leaves loopback)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab_transport import LabTransport

from kubehop.core.planner.make import plan_upgrade
from kubehop.data import load_release_data
from kubehop.lab.history import check_history
from kubehop.lab.lab import Lab
from kubehop.model.plan import PlanOptions, StepKind
from kubehop.shell.executor.cluster import KubeCluster
from kubehop.shell.executor.engine import Executor
from kubehop.shell.executor.events import ProgressEvent
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.journal import Journal
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.observe.cluster import observe
from kubehop.shell.observe.nodes import TransportRunner
from kubehop.shell.steps.base import ExecutorOptions
from kubehop.shell.steps.facts import NodeFacts

TARGET = "1.30"


@dataclass
class Run:
    """One upgrade on one lab, timed in lab seconds."""

    nodes: int
    workers: int
    steps: int
    waves: int
    worker_waves: int
    makespan: float
    control_plane: float
    per_node: float
    real: float
    cpu_busy: float  # process CPU seconds per real second during the worker waves
    violations: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the lab history

    @property
    def lower_bound(self) -> float:
        return self.control_plane + self.worker_waves * self.per_node


async def upgrade(nodes: int, pods: int, scale: float, options: PlanOptions,
                  parallel: int, target: str = TARGET, scenario: str = "large") -> Run:
    with tempfile.TemporaryDirectory(prefix="kubehop-bench-") as tmp:
        async with Lab(f"{scenario}:nodes={nodes},pods={pods}", time_scale=scale, ssh=False,
                       tls=False,
                       state_dir=Path(tmp) / "lab") as lab:
            client = await KubeClient.connect(str(lab.kubeconfig_path))
            transport = LabTransport(lab)
            state = await observe(client, workloads=True, node_runner=TransportRunner(transport),
                                  kubectl=False)
            plan = plan_upgrade(state, target, load_release_data(), options)
            stamps: dict[tuple[str, str], float] = {}
            workers = {w.index for w in plan.waves if w.kind == "workers"}
            cpu: list[tuple[float, float]] = []  # (real, process) during worker waves

            def on_event(e: ProgressEvent) -> None:
                if e.step is not None and e.kind in ("step-started", "step-succeeded",
                                                     "step-skipped"):
                    stamps.setdefault((e.kind, e.step), lab.clock.now())
                    if e.wave in workers:
                        cpu.append((time.monotonic(), time.process_time()))
                if e.kind == "wave-started":
                    print(f"  {nodes} nodes: wave {e.wave} at lab {lab.clock.now():,.0f} s "
                          f"({e.done}/{e.total} steps)", file=sys.stderr, flush=True)

            journal = Journal(Path(tmp) / "journal.sqlite3")
            kube = KubeCluster(client)
            await kube.start()
            try:
                checker = ExpectChecker(kube, NodeFacts(transport))
                runner = StepRunner(kube, transport, checker, HealthGates(kube),
                                    ExecutorOptions(parallel=parallel))
                run_state = journal.begin("bench", plan)
                executor = Executor(plan, journal, run_state, runner, on_event=on_event)
                t0, r0 = lab.clock.now(), time.monotonic()
                await executor.run()
                t1, r1 = lab.clock.now(), time.monotonic()
            finally:
                await kube.close()
                await client.close()
                journal.close()
            events = lab.history.since(0)
            violations = check_history(events, max_unavailable=plan.max_unavailable_nodes)
    busy = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else 0.0
    run = measure(plan, stamps, nodes, t0, t1, r1 - r0, busy, [str(v) for v in violations])
    run.events = events
    return run


def measure(plan: Any, stamps: dict[tuple[str, str], float], nodes: int, t0: float, t1: float,
            real: float, busy: float, violations: list[str]) -> Run:
    def start(step_id: str) -> float | None:
        return stamps.get(("step-started", step_id)) or stamps.get(("step-skipped", step_id))

    def end(step_id: str) -> float | None:
        return stamps.get(("step-succeeded", step_id)) or stamps.get(("step-skipped", step_id))

    waves = {w.index: w for w in plan.waves}
    cp_time = 0.0
    per_node: list[float] = []
    for w in plan.waves:
        steps = [s for s in plan.steps if s.wave == w.index and s.kind is not StepKind.GATE]
        if not steps:
            continue
        begun = [t for s in steps if (t := start(s.id)) is not None]
        ended = [t for s in steps if (t := end(s.id)) is not None]
        if w.kind.startswith("control-plane") and begun and ended:
            cp_time += max(ended) - min(begun)
        if w.kind == "workers":
            for node in w.nodes:
                mine = [s for s in steps if s.node == node]
                a, b = start(mine[0].id), end(mine[-1].id)
                if a is not None and b is not None:
                    per_node.append(b - a)
    workers = sum(1 for n in {s.node for s in plan.steps if s.node}
                  if not n.startswith("cp-"))
    worker_waves = sum(1 for w in waves.values() if w.kind == "workers")
    return Run(nodes, workers, len(plan.steps), len(plan.waves), worker_waves, t1 - t0,
               cp_time, statistics.median(per_node) if per_node else 0.0, real, busy,
               violations)


def publish(text: str, append: bool) -> None:
    """Print a results section, and with `--append` add it to bench/RESULTS.md."""
    print(text)
    if append:
        with (Path(__file__).parent / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write(text)


def row(name: str, r: Run) -> str:
    return (f"| {name} | {r.nodes} | {r.steps} | {r.worker_waves} | {r.makespan:,.0f} s | "
            f"{r.control_plane:,.0f} s | {r.per_node:,.1f} s | {r.lower_bound:,.0f} s | "
            f"{r.makespan / r.lower_bound:.2f}x | {r.real:,.0f} s | {r.cpu_busy:.0%} | "
            f"{len(r.violations)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=30, help="application pods per worker")
    ap.add_argument("--scale", type=float, default=0.5, help="real seconds per lab second")
    ap.add_argument("--guide-nodes", type=int, default=10)
    ap.add_argument("--guide-scale", type=float, default=0.05)
    ap.add_argument("--parallel", type=int, default=256)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()

    ours = asyncio.run(upgrade(args.nodes, args.pods, args.scale,
                               PlanOptions(max_unavailable="10%"), args.parallel))
    print(row("kubehop 10%", ours), flush=True)
    guide = asyncio.run(upgrade(args.guide_nodes, args.pods, args.guide_scale,
                                PlanOptions(max_unavailable=1, worker_strategy="every-minor"),
                                args.parallel))
    print(row("guide (1 node, every minor)", guide), flush=True)
    # The guide's makespan grows with the workers: its control-plane time plus, per worker,
    # what one worker costs it (both hops) — measured on the smaller lab.
    per_worker = (guide.makespan - guide.control_plane) / guide.workers
    guide_at_n = guide.control_plane + per_worker * ours.workers
    ratio = ours.makespan / ours.lower_bound
    lines = [
        "",
        f"## Upgrade makespan: `large`, two minors (issue: apply) — {date.today()}",
        "",
        f"Command: `.venv/bin/python bench/upgrade_bench.py --nodes {args.nodes} --pods "
        f"{args.pods} --scale {args.scale} --guide-nodes {args.guide_nodes} --guide-scale "
        f"{args.guide_scale}`",
        "",
        "Lab time (lab seconds; the lab's timing: podStart 5, podStop 2, kubeletRestart 10, "
        "staticPodRestart 20, packageInstall 8). kubehop's executor in-process; the API over "
        "HTTP; node commands to the lab's node agents without SSH.",
        "",
        "| run | nodes | steps | worker waves | makespan | control-plane time | per-node time "
        "| lower bound | makespan / bound | real | CPU in waves | violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        row("kubehop `--max-unavailable 10%`", ours),
        row("upstream guide (1 node, every minor)", guide),
        "",
        f"- kubehop vs its lower bound: **{ratio:.2f}x** (target ≤ 1.2x). Per-node time is the "
        f"median worker's cordon → uncordon in its wave ({ours.per_node:,.1f} s); one worker "
        f"alone (the guide's run) takes {guide.per_node:,.1f} s; with that per-node time the "
        f"bound is "
        f"{ours.control_plane + ours.worker_waves * guide.per_node:,.0f} s "
        f"({ours.makespan / (ours.control_plane + ours.worker_waves * guide.per_node):.2f}x).",
        f"- upstream guide at {args.nodes} nodes (extrapolated from {args.guide_nodes}: "
        f"control plane {guide.control_plane:,.0f} s + {per_worker:,.1f} s per worker): "
        f"{guide_at_n:,.0f} s, **{guide_at_n / ours.makespan:.0f}x** kubehop's makespan.",
        "- `check_history`: " + ("no broken invariant in either run." if not ours.violations
                                 and not guide.violations else
                                 f"{len(ours.violations) + len(guide.violations)} violations."),
    ]
    publish("\n".join(lines) + "\n", args.append)


if __name__ == "__main__":
    main()

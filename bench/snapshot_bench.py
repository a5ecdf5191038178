"""Benchmark: `kubehop lab snapshot` of a large lab — wall time and peak memory.

    .venv/bin/python bench/snapshot_bench.py [--nodes 5000] [--pods 30] [--anonymize]

Starts the `large:nodes=N,pods=P` lab in a child process (API over HTTP on loopback, no SSH
servers: without an inventory a snapshot reads only the API), waits until it serves, then runs
`kubehop --kubeconfig K lab snapshot -o FILE` as its own process, as a user would, and reports
its wall time and peak resident memory (`ru_maxrss` of that process alone, from wait4), the
snapshot's size, nodes, workloads and placed pods, and the time `lab validate` takes to read
the file back. The target (issue #19): 5,000 nodes / 150,000 pods in under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import netguard  # noqa: F401  (nothing leaves loopback)

KUBEHOP = str(Path(sys.executable).parent / "kubehop")


async def serve(state_dir: Path, scenario: str) -> None:
    """The lab, until standard input closes; prints `ready` once it serves."""
    from kubehop.lab.lab import Lab

    async with Lab(scenario, state_dir=state_dir, time_scale=1.0, ssh=False, tls=False):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def run_measured(argv: list[str]) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS in MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode())
    return proc.returncode, wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=30, help="application pods per worker")
    ap.add_argument("--anonymize", action="store_true")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    scenario = f"large:nodes={args.nodes},pods={args.pods}"
    if args.serve is not None:
        asyncio.run(serve(args.serve, scenario))
        return
    with tempfile.TemporaryDirectory(prefix="kubehop-snapbench-") as tmp:
        state = Path(tmp) / "lab"
        t0 = time.perf_counter()
        lab = subprocess.Popen([sys.executable, __file__, "--nodes", str(args.nodes), "--pods",
                                str(args.pods), "--serve", str(state)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert lab.stdout is not None
            if lab.stdout.readline().strip() != "ready":
                sys.exit("the lab did not start")
            print(f"lab {scenario}: up in {time.perf_counter() - t0:.1f} s", flush=True)
            out = Path(tmp) / "snapshot.yaml"
            cmd = [KUBEHOP, "--kubeconfig", str(state / "kubeconfig"), "lab", "snapshot",
                   "-o", str(out), *(["--anonymize"] if args.anonymize else [])]
            code, wall, peak = run_measured(cmd)
            if code != 0:
                sys.exit(f"lab snapshot failed: exit {code}")
            text = out.read_text()
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            nodes, workloads = len(doc["nodes"]), len(doc["workloads"])
            placed = sum(len(w.get("placement") or ()) or w.get("replicas", 0)
                         for w in doc["workloads"] if w["kind"] != "DaemonSet")
            code, check_wall, _ = run_measured([KUBEHOP, "lab", "validate", str(out)])
        finally:
            if lab.stdin is not None:
                lab.stdin.close()
            lab.wait(timeout=120)
    print(f"command: .venv/bin/python bench/snapshot_bench.py --nodes {args.nodes} "
          f"--pods {args.pods}" + (" --anonymize" if args.anonymize else ""))
    print(f"kubehop lab snapshot: {wall:.1f} s wall, peak RSS {peak:.0f} MiB; "
          f"file {len(text) / 2**20:.1f} MiB: {nodes} nodes, {workloads} workloads, {placed} "
          f"pods placed (DaemonSet pods aside); `kubehop lab validate` of it: "
          f"{check_wall:.1f} s (exit {code})")


if __name__ == "__main__":
    main()

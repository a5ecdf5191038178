"""Benchmark: the CPU one wave of drains costs the lab + kubehop, per drained node.

    .venv/bin/python bench/wave_bench.py [--nodes 100] [--pods 30] [--wave 10] [--scale 0.05]
                                         [--profile FILE]

Builds `large:nodes=N,pods=P` in-process (API over HTTP, no SSH), then drains `--wave` workers at
once with kubehop's drain (the executor's entry point), uncordons them and waits until the lab
settles (every evicted pod replaced and Ready). Prints process CPU seconds for the wave and per
drained node: the figure that decides how large a lab one core can run in faithful lab time
(see bench/upgrade_bench.py). The baseline, measured in the same run: the CPU of building the
lab, per node.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from pathlib import Path

import netguard  # noqa: F401  (nothing leaves loopback)
from kubehop.core.drain.rules import DrainOptions
from kubehop.lab.lab import Lab
from kubehop.shell.drain.node import drain_node, uncordon_node
from kubehop.shell.kube.client import KubeClient


async def wave(nodes: int, pods: int, size: int, scale: float,
               profile: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="kubehop-wave-") as tmp:
        c0 = time.process_time()
        async with Lab(f"large:nodes={nodes},pods={pods}", time_scale=scale, ssh=False,
                       tls=False, state_dir=Path(tmp) / "lab") as lab:
            build = time.process_time() - c0
            client = await KubeClient.connect(str(lab.kubeconfig_path))
            cps = set(lab.control_planes)
            workers = sorted(o["metadata"]["name"] for o in lab.store.iter("nodes")
                             if o["metadata"]["name"] not in cps)[:size]
            options = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True,
                                   timeout=600)
            prof = cProfile.Profile() if profile else None
            r0, p0, t0 = time.monotonic(), time.process_time(), lab.clock.now()
            if prof:
                prof.enable()
            results = await asyncio.gather(*(drain_node(client, w, options) for w in workers))
            drained = time.monotonic()
            for w in workers:
                await uncordon_node(client, w)
            await lab.controllers.settle(timeout=3600, horizon=None)
            if prof:
                prof.disable()
                prof.dump_stats(profile)
            r1, p1, t1 = time.monotonic(), time.process_time(), lab.clock.now()
            await client.close()
            evicted = sum(len(r.evicted) for r in results)
    cpu = p1 - p0
    print(f"lab large:nodes={nodes},pods={pods}: build {build:.1f} s CPU "
          f"({build / nodes * 1000:.1f} ms per node)")
    print(f"wave of {size} nodes, {evicted} pods evicted: drains {drained - r0:.1f} s real; "
          f"settled after {r1 - r0:.1f} s real, {t1 - t0:.1f} lab s; CPU {cpu:.1f} s "
          f"({cpu / size:.2f} s per node, {cpu / max(1, evicted) * 1000:.1f} ms per pod)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--wave", type=int, default=10)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--profile")
    args = ap.parse_args()
    asyncio.run(wave(args.nodes, args.pods, args.wave, args.scale, args.profile))


if __name__ == "__main__":
    main()

"""Scale check of the lab: 5,000 nodes and 150,000 pods; prints build time, memory, paging cost.

Run: .venv/bin/python bench/lab_scale.py [--nodes 5000] [--pods 150000] [--http]
Not a timed test; the aim is a start under 60 s and memory proportionate to the objects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import time

import msgspec

import netguard  # noqa: F401  (nothing leaves loopback)
from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec, LabWorkloadSpec


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spec(nodes: int, pods: int) -> ClusterSpec:
    # DaemonSet-free workloads: 150 deployments of pods/150 replicas across 30 namespaces,
    # minus the kube-system pods (kube-proxy + CNI per node) counted separately.
    per = max(1, pods // 150)
    workloads = tuple(
        LabWorkloadSpec("Deployment", f"team-{i % 30}", f"app-{i}", replicas=per,
                     requests={"cpu": "50m", "memory": "64Mi"})
        for i in range(150)
    )
    return ClusterSpec(
        nodes=(LabNodeSpec("cp", roles=("control-plane",), count=3),
               LabNodeSpec("worker", count=nodes - 3, pods="250")),
        workloads=workloads,
    )


async def page_over_http(store: Store, limit: int) -> tuple[int, int, float]:
    from aiohttp import ClientSession

    from kubehop.lab.api.server import LabServer

    async with LabServer(store=store, tls=False) as lab, ClientSession() as http:
        t0 = time.perf_counter()
        count = pages = 0
        token = ""
        while True:
            params = {"limit": str(limit)}
            if token:
                params["continue"] = token
            async with http.get(f"{lab.url}/api/v1/pods", params=params) as r:
                body = msgspec.json.decode(await r.read())
            count += len(body["items"])
            pages += 1
            token = body["metadata"].get("continue", "")
            if not token:
                break
        return count, pages, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=150_000)
    ap.add_argument("--http", action="store_true", help="also page pods through the HTTP API")
    args = ap.parse_args()
    base = rss_mb()
    store = Store()
    t0 = time.perf_counter()
    populate(spec(args.nodes, args.pods), store)
    build = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # as LabServer does: the initial world is long-lived, keep it out of GC passes
    mem = rss_mb() - base
    npods, nnodes = store.count("pods"), store.count("nodes")
    print(f"built {nnodes} nodes, {npods} pods in {build:.1f} s; "
          f"memory +{mem:.0f} MB ({mem * 1024 / max(1, npods + nnodes):.1f} KB per object)")

    t0 = time.perf_counter()
    seen = pages = 0
    token = None
    while True:
        page = store.list("pods", limit=500, continue_token=token)
        seen += len(page.items)
        pages += 1
        token = page.continue_token or None
        if token is None:
            break
    print(f"store: listed {seen} pods in {pages} pages of 500 in {time.perf_counter() - t0:.2f} s")

    t0 = time.perf_counter()
    on_node = store.list("pods", field_selector="spec.nodeName=worker-17", limit=500)
    print(f"store: pods on one node: {len(on_node.items)} in "
          f"{(time.perf_counter() - t0) * 1000:.2f} ms")

    t0 = time.perf_counter()
    labelled = store.list("pods", "team-3", label_selector="app=app-3")
    print(f"store: label selector in one namespace: {len(labelled.items)} in "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")

    if args.http:
        count, pages, secs = asyncio.run(page_over_http(store, 500))
        print(f"http: listed {count} pods in {pages} pages of 500 in {secs:.1f} s "
              f"({secs / pages * 1000:.0f} ms per page)")


if __name__ == "__main__":
    main()

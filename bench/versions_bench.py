"""`kubehop versions -o json` versus the kubectl pipeline that gives the same facts.

Run: .venv/bin/python bench/versions_bench.py [--scenario large:nodes=5000,pods=30] [--runs 3]
     [--check]

One lab (its own process, no SSH) serves both, in the same run. Each command runs under
`/usr/bin/time -v` (wall time, peak RSS of the largest process); runs alternate, medians are
reported. The kubectl side is what the upstream guide's reader types:

    kubectl get nodes -o json | jq '[.items[] | {name, kubelet, kubeProxy, os, kernel, runtime}]'
    kubectl get pods -n kube-system -o json | jq '[.items[] | {node, component, image}]'
    kubectl version -o json

Targets: kubehop wall time <= 1.0x the pipeline's, kubehop peak RSS < 200 MB. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import netguard  # noqa: F401  (nothing leaves loopback)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import kubectl_bin  # noqa: E402

LAB = """
import asyncio, sys
from pathlib import Path
from kubehop.lab.lab import Lab

async def main():
    lab = Lab(sys.argv[1], state_dir=Path(sys.argv[2]), time_scale=1.0, ssh=False)
    async with lab:
        print(lab.kubeconfig_path, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

NODES_JQ = ("[.items[] | {name: .metadata.name, roles: [.metadata.labels | keys[] | "
            "select(startswith(\"node-role.kubernetes.io/\"))], kubelet: "
            ".status.nodeInfo.kubeletVersion, kernel: .status.nodeInfo.kernelVersion, "
            "osImage: .status.nodeInfo.osImage, runtime: .status.nodeInfo.containerRuntimeVersion, "
            "ready: ([.status.conditions[] | select(.type == \"Ready\") | .status][0]), "
            "unschedulable: (.spec.unschedulable // false)}]")
PODS_JQ = ("[.items[] | {node: .spec.nodeName, component: (.metadata.labels.component // "
           ".metadata.labels[\"k8s-app\"]), image: .spec.containers[0].image}]")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of `argv` under /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - t0
        text = Path(report.name).read_text()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    if proc.returncode != 0:
        print(proc.stderr.decode()[-2000:], file=sys.stderr)
    return wall, rss, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="large:nodes=5000,pods=30")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--check", action="store_true",
                    help="also time `kubehop check -o json` (reads every pod; no kubectl twin)")
    args = ap.parse_args()
    kubectl = kubectl_bin.kubectl(30)
    if kubectl is None:
        sys.exit(kubectl_bin.skip_reason(30))
    work = Path(tempfile.mkdtemp(prefix="kubehop-bench-"))
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(kubectl)
    t0 = time.perf_counter()
    lab = subprocess.Popen([sys.executable, "-c", LAB, args.scenario, str(work / "lab")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    kubeconfig = lab.stdout.readline().strip() if lab.stdout else ""
    if not kubeconfig:
        sys.exit("the lab did not start")
    print(f"lab {args.scenario} up in {time.perf_counter() - t0:.0f} s")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(work / "home"),
           "KUBECONFIG": kubeconfig, "NO_COLOR": "1"}
    (work / "home").mkdir()
    out = work / "out"
    out.mkdir()
    pipeline = ["sh", "-c",
                f"kubectl get nodes -o json | jq -c '{NODES_JQ}' > {out}/nodes.json && "
                f"kubectl get pods -n kube-system -o json | jq -c '{PODS_JQ}' > {out}/pods.json "
                f"&& kubectl version -o json > {out}/version.json"]
    kubehop = [str(ROOT / ".venv" / "bin" / "kubehop"), "versions", "-o", "json"]
    try:
        # Warm up: kubectl's discovery cache, the page cache for both.
        timed(pipeline, env)
        timed(kubehop, env)
        results: dict[str, list[tuple[float, float]]] = {"kubehop": [], "kubectl": []}
        for _ in range(args.runs):
            for name, argv in (("kubehop", kubehop), ("kubectl", pipeline)):
                wall, rss, code = timed(argv, env)
                if code != 0:
                    sys.exit(f"{name} failed (exit {code})")
                results[name].append((wall, rss))
        checked = None
        if args.check:
            checked = timed([*kubehop[:-3], "check", "-o", "json"], env)
        doc = json.loads(subprocess.run(kubehop, env=env, capture_output=True, check=True).stdout)
        nodes = len(doc["nodes"])
        pods = len(json.loads((out / "pods.json").read_text()))
    finally:
        if lab.stdin:
            lab.stdin.close()
        lab.wait(timeout=120)
    med = {k: (statistics.median(w for w, _ in v), max(r for _, r in v))
           for k, v in results.items()}
    ratio = med["kubehop"][0] / med["kubectl"][0]
    print(f"{nodes} nodes, {pods} kube-system pods; median of {args.runs} runs")
    for name, (wall, rss) in med.items():
        print(f"  {name:8} wall {wall:6.2f} s   peak RSS {rss:6.0f} MB   "
              f"(runs: {', '.join(f'{w:.2f}' for w, _ in results[name])})")
    print(f"  ratio kubehop/kubectl wall: {ratio:.2f}x (target <= 1.0x); kubehop peak RSS "
          f"{med['kubehop'][1]:.0f} MB (target < 200 MB)")
    if checked is not None:
        print(f"  kubehop check -o json (every pod, PDB, database): wall {checked[0]:.2f} s, "
              f"peak RSS {checked[1]:.0f} MB, exit {checked[2]}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

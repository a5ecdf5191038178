"""`kubehop drain` against `kubectl drain` (1.30) on twin labs: a node with 110 pods, some behind
PodDisruptionBudgets.

Run: .venv/bin/python bench/drain_bench.py [--runs 3] [--scale 0.01] [--kubectl PATH]

Each run starts two labs of the same scenario in this process, drains `w1` with kubectl on one and
with kubehop on the other (both as subprocesses, same flags, one after the other), and prints the
wall times and their ratio. The labs' histories must agree on the evicted pods, show every one
removed through the Eviction API and no safety invariant broken. Target: kubehop <= 0.5x kubectl.
Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import netguard  # noqa: F401  (nothing leaves loopback)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import kubectl_bin  # noqa: E402

from kubehop.lab.history import check_history  # noqa: E402
from kubehop.lab.lab import Lab  # noqa: E402

NODE = """
  - name: {name}
    roles: {roles}
    os: {{family: debian, image: "Ubuntu 22.04.4 LTS", kernel: 5.15.0-105-generic}}
    packages: {{kubeadm: 1.28.9-1.1, kubelet: 1.28.9-1.1, kubectl: 1.28.9-1.1}}
    capacity: {{cpu: "32", memory: 64Gi, pods: 250}}
"""
# On w1: 8 Deployments x 12 replicas, `pay` (6 replicas, maxUnavailable 2) and `cart`
# (5 replicas, maxUnavailable 2): 107 pods, plus kube-proxy, calico-node and node-exporter = 110.
WORKLOADS = "".join(
    f"  - {{kind: Deployment, namespace: team-{i % 4}, name: app-{i}, replicas: 12, node: w1}}\n"
    for i in range(8)) + """\
  - {kind: Deployment, namespace: shop, name: pay, replicas: 6, node: w1,
     pdb: {maxUnavailable: 2}}
  - {kind: Deployment, namespace: shop, name: cart, replicas: 5, node: w1,
     pdb: {maxUnavailable: 2}}
  - {kind: DaemonSet, namespace: monitoring, name: node-exporter}
"""
FLAGS = ["--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s"]


def scenario(directory: Path) -> Path:
    nodes = NODE.format(name="cp1", roles="[control-plane]") + "".join(
        NODE.format(name=f"w{i}", roles="[]") for i in range(1, 5))
    path = directory / "drain110.yaml"
    path.write_text("apiVersion: kubehop.dev/v1\nkind: LabScenario\nname: drain110\n"
                    f"cluster: {{kubernetesVersion: v1.28.9}}\nnodes:{nodes}\n"
                    f"workloads:\n{WORKLOADS}")
    return path


def pods_on(lab: Lab, node: str) -> dict[str, str]:
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["metadata"]["uid"]
            for p in lab.store.by_index("pods", "spec.nodeName", node)}


def evicted(lab: Lab, before: dict[str, str]) -> dict[str, str]:
    uids = {uid: key for key, uid in before.items()}
    return {uids[e["uid"]]: e["by"] for e in lab.history.since(0)
            if e["type"] == "pod" and e["event"] == "deleted" and e["uid"] in uids}


async def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return time.perf_counter() - start, proc.returncode or 0, out.decode()


async def one_run(path: Path, work: Path, kubectl: Path, scale: float) -> tuple[float, float]:
    async with Lab(str(path), time_scale=scale, ssh=False, state_dir=work / "a") as a, \
            Lab(str(path), time_scale=scale, ssh=False, state_dir=work / "b") as b:
        await asyncio.gather(a.controllers.settle(), b.controllers.settle())
        before_a, before_b = pods_on(a, "w1"), pods_on(b, "w1")
        assert len(before_a) == 110, len(before_a)
        assert before_a.keys() == before_b.keys(), "twin labs must hold the same pods"
        home = work / "home"
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
        t_kubectl, code, out = await timed(
            [str(kubectl), "--kubeconfig", str(a.kubeconfig_path), "--cache-dir",
             str(home / "cache"), "drain", "w1", *FLAGS], env)
        assert code == 0, out
        t_kubehop, code, out = await timed(
            [str(ROOT / ".venv" / "bin" / "kubehop"), "--kubeconfig", str(b.kubeconfig_path),
             "drain", "w1", *FLAGS], env)
        assert code == 0, out
        gone_a, gone_b = evicted(a, before_a), evicted(b, before_b)
        assert gone_a.keys() == gone_b.keys(), sorted(gone_a.keys() ^ gone_b.keys())
        assert len(gone_b) == 107, len(gone_b)
        assert set(gone_a.values()) == set(gone_b.values()) == {"eviction"}
        for lab in (a, b):
            assert check_history(lab.history.since(0)) == []
        return t_kubectl, t_kubehop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.01,
                        help="lab time scale (real seconds per lab second)")
    parser.add_argument("--kubectl", type=Path, default=None, help="kubectl binary (1.30)")
    args = parser.parse_args()
    kubectl = args.kubectl or kubectl_bin.kubectl(30)
    if kubectl is None:
        sys.exit(f"no kubectl: {kubectl_bin.skip_reason(30)}")
    with tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp:
        path = scenario(Path(tmp))
        print(f"node w1: 110 pods (107 evictable, 11 behind PDBs); lab time scale {args.scale}")
        print(f"{'run':>3}  {'kubectl':>9}  {'kubehop':>9}  ratio")
        results = []
        for run in range(1, args.runs + 1):
            work = Path(tmp) / f"run{run}"
            work.mkdir()
            t_kubectl, t_kubehop = await one_run(path, work, kubectl, args.scale)
            results.append((t_kubectl, t_kubehop))
            print(f"{run:>3}  {t_kubectl:8.2f}s  {t_kubehop:8.2f}s  {t_kubehop / t_kubectl:.2f}x")
        med_c = statistics.median(r[0] for r in results)
        med_h = statistics.median(r[1] for r in results)
        print(f"median  kubectl {med_c:.2f}s  kubehop {med_h:.2f}s  ratio {med_h / med_c:.2f}x "
              "(target <= 0.5x); evicted pod sets identical, all by eviction, history clean")


if __name__ == "__main__":
    asyncio.run(main())

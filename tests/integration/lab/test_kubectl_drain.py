"""Real `kubectl drain` against the lab (issue: the lab must satisfy real kubectl).

A drain of a node whose pods are all evictable finishes and the pods come back elsewhere; a drain
a PodDisruptionBudget blocks shows kubectl's 429 retry message and gives up at --timeout. The lab
history, not kubectl's report, proves no PDB was violated and every pod left through eviction.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubehop.lab.history import check_history
from kubehop.lab.lab import Lab
from tests.integration import kubectl_bin

SCALE = 0.01  # real seconds per lab second: a 5 s pod start takes 50 ms

NODE = """
  - name: {name}
    roles: {roles}
    os: {{family: debian, image: "Ubuntu 22.04.4 LTS", kernel: 5.15.0-105-generic}}
    packages: {{kubeadm: 1.28.9-1.1, kubelet: 1.28.9-1.1, kubectl: 1.28.9-1.1}}
    capacity: {{cpu: "4", memory: 8Gi, pods: 110}}
"""
SCENARIO = """apiVersion: kubehop.dev/v1
kind: LabScenario
name: drainable
cluster: {{kubernetesVersion: v1.28.9}}
nodes:{nodes}
workloads:
  - {{kind: Deployment, namespace: web, name: frontend, replicas: 4,
     requests: {{cpu: 100m, memory: 128Mi}}, emptyDir: true, pdb: {{maxUnavailable: 1}}}}
  - {{kind: DaemonSet, namespace: monitoring, name: node-exporter}}
  - {{kind: Deployment, namespace: pay, name: ledger, replicas: 2,
     requests: {{cpu: 100m, memory: 64Mi}}, pdb: {{minAvailable: 2}}}}
"""
MINORS = (27, 30, 33, 37)


def scenario_file(tmp_path: Path) -> Path:
    nodes = NODE.format(name="cp1", roles="[control-plane]") + "".join(
        NODE.format(name=f"w{i}", roles="[]") for i in (1, 2, 3))
    path = tmp_path / "drainable.yaml"
    path.write_text(SCENARIO.format(nodes=nodes))
    return path


async def kubectl(minor: int, lab: Lab, home: Path, *args: str,
                  timeout: float = 90) -> tuple[int, str]:
    binary = kubectl_bin.kubectl(minor)
    if binary is None:
        pytest.skip(kubectl_bin.skip_reason(minor))
    env = {"HOME": str(home), "KUBECONFIG": str(lab.kubeconfig_path), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        str(binary), "--cache-dir", str(home / "cache"), *args, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


def pods_on(lab: Lab, node: str, namespace: str | None = None) -> list[str]:
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                  for p in lab.store.by_index("pods", "spec.nodeName", node)
                  if namespace is None or p["metadata"]["namespace"] == namespace)


def frontend_node_with_no_ledger(lab: Lab) -> str:
    """A worker running frontend pods but no `pay/ledger` pod (so its drain is unblocked)."""
    for node in ("w1", "w2", "w3"):
        if pods_on(lab, node, "web") and not pods_on(lab, node, "pay"):
            return node
    pytest.fail("the scenario placed a ledger pod beside every frontend pod")


@pytest.fixture
async def lab(tmp_path):
    async with Lab(str(scenario_file(tmp_path)), time_scale=SCALE, ssh=False,
                   state_dir=tmp_path / "state") as running:
        await running.controllers.settle()
        yield running


@pytest.mark.parametrize("minor", MINORS)
async def test_drain_of_an_evictable_node_finishes_and_pods_return_elsewhere(lab, tmp_path,
                                                                            minor):
    node = frontend_node_with_no_ledger(lab)
    evicted = pods_on(lab, node, "web")
    code, out = await kubectl(minor, lab, tmp_path, "drain", node, "--ignore-daemonsets",
                              "--delete-emptydir-data", "--timeout=60s")
    assert code == 0, out
    assert f"node/{node} cordoned" in out
    warning = next(line for line in out.splitlines() if "DaemonSet-managed" in line)
    assert warning.startswith("Warning: ignoring DaemonSet-managed Pods: ")
    assert "monitoring/node-exporter-" in warning
    assert "kube-system/kube-proxy-" in warning
    for pod in evicted:
        assert f"evicting pod {pod}" in out
        assert f"pod/{pod.split('/')[1]} evicted" in out
    assert f"node/{node} drained" in out
    assert pods_on(lab, node, "web") == []
    await lab.controllers.settle()
    frontend = [p for p in lab.store.iter("pods", "web")]
    assert len(frontend) == 4
    assert all(p["spec"]["nodeName"] != node for p in frontend)
    assert all(c["status"] == "True" for p in frontend for c in p["status"]["conditions"]
               if c["type"] == "Ready")

    events = lab.history.since(0)
    deleted = [e for e in events if e["type"] == "pod" and e["event"] == "deleted"
               and f"{e['namespace']}/{e['name']}" in evicted]
    assert sorted(f"{e['namespace']}/{e['name']}" for e in deleted) == evicted
    assert {e["by"] for e in deleted} == {"eviction"}
    assert check_history(events) == []

    code, out = await kubectl(minor, lab, tmp_path, "uncordon", node)
    assert code == 0
    assert f"node/{node} uncordoned" in out


@pytest.mark.parametrize("minor", MINORS)
async def test_a_pdb_blocked_drain_retries_and_gives_up_at_the_timeout(lab, tmp_path, minor):
    ledger_node = lab.store.peek("pods", "pay", next(
        p["metadata"]["name"] for p in lab.store.iter("pods", "pay")))["spec"]["nodeName"]
    code, out = await kubectl(minor, lab, tmp_path, "drain", ledger_node, "--ignore-daemonsets",
                              "--delete-emptydir-data", "--timeout=7s")
    assert code != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in out
    assert "(will retry after 5s)" in out
    assert "global timeout reached: 7s" in out
    assert pods_on(lab, ledger_node, "pay"), "the PDB-protected pod must still run"
    refused = [e for e in lab.history.since(0) if e["type"] == "eviction-refused"]
    assert refused
    assert all(e["code"] == 429 and e["pdb"] == "pay/ledger" for e in refused)
    assert check_history(lab.history.since(0)) == []

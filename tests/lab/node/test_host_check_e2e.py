"""Issue #14 item 7 end to end: a lab scenario with a cgroup v1 node and a removed kubelet flag in
/etc/default/kubelet; `check --to 1.36` names both nodes with their fixes before anything
changes, and planning refuses."""

from __future__ import annotations

from datetime import date

import pytest

from kubehop.core.checks.run import run_checks
from kubehop.core.planner.make import plan_upgrade
from kubehop.data import load_release_data
from kubehop.lab.lab import Lab
from kubehop.model.errors import UsageError
from kubehop.model.findings import Severity
from kubehop.model.versions import MinorVersion
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.observe.cluster import observe

PKGS = "{kubeadm: 1.34.3-1.1, kubelet: 1.34.3-1.1, kubectl: 1.34.3-1.1}"
SCENARIO = f"""\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: hosts
cluster: {{kubernetesVersion: v1.34.3, kubeProxy: v1.34.3, coredns: v1.12.1}}
nodes:
  - {{name: cp1, roles: [control-plane], packages: {PKGS}}}
  - {{name: w1, packages: {PKGS}}}
  - {{name: w2, packages: {PKGS}}}
faults:
  - {{kind: cgroup-v1, node: w1}}
  - {{kind: kubelet-extra-args, node: w2,
     args: "--pod-infra-container-image=registry.k8s.io/pause:3.10"}}
"""


class AgentsRunner:
    """The facts command through the lab's node agents (what SSH would run)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        r = await self.lab.agents.run(node, command)
        return r.exit_code, r.stdout, r.stderr


async def test_check_to_136_blocks_on_a_cgroup_v1_node_and_a_removed_kubelet_flag(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text(SCENARIO)
    async with (Lab(str(path), time_scale=0.01, ssh=False, tls=False,
                    state_dir=tmp_path / "s") as lab,
                await KubeClient.connect(str(lab.kubeconfig_path)) as client):
        assert lab.unsimulated_faults == []
        state = await observe(client, workloads=True, node_runner=AgentsRunner(lab),
                              kubectl=False)
    data = load_release_data()
    findings = run_checks(state, data, date(2026, 11, 25), data.latest_patch(MinorVersion(1, 36)))
    host = {f.id: f for f in findings if f.id.startswith("host.")}
    assert set(host) == {"host.cgroup-v1", "host.kubelet-flag-removed"}
    assert all(f.severity is Severity.BLOCKING for f in host.values())
    assert host["host.cgroup-v1"].subject == "node/w1"
    assert "failCgroupV1" in host["host.cgroup-v1"].message
    assert host["host.kubelet-flag-removed"].subject == "node/w2"
    assert host["host.kubelet-flag-removed"].fix.startswith(
        "remove --pod-infra-container-image from KUBELET_EXTRA_ARGS in /etc/default/kubelet "
        "on node w2")
    with pytest.raises(UsageError, match=r"refusing to plan: blocking finding host\."):
        plan_upgrade(state, "1.36", data, findings=findings)

"""`observe()` against the lab directly (in its event loop): node facts through the lab's node
agents, workloads, databases and the API versions in use."""

from __future__ import annotations

from kubehop.lab.lab import Lab
from kubehop.model.cluster import OsFamily
from kubehop.model.versions import MinorVersion, parse_kube_version
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.observe.cluster import observe
from tests.integration.observe.conftest import SCALE


class AgentsRunner:
    """The NodeRunner protocol over the lab's node agents (what SSH would run)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.asked: list[str] = []

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        self.asked.append(node)
        r = await self.lab.agents.run(node, command)
        return r.exit_code, r.stdout, r.stderr


class Broken:
    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        if node == "rocky3":
            raise OSError("no route to host")
        return 0, "", ""


async def test_node_facts_workloads_and_databases(tmp_path):
    async with Lab("oldversion", time_scale=SCALE, ssh=False, state_dir=tmp_path / "s") as lab:
        await lab.agents.run("oldversion3", "apt-mark unhold kubectl", root=True)
        runner = AgentsRunner(lab)
        async with await KubeClient.connect(str(lab.kubeconfig_path)) as client:
            state = await observe(client, workloads=True, node_runner=runner, kubectl=False)
    assert sorted(runner.asked) == ["oldversion1", "oldversion2", "oldversion3"]
    n1, _, n3 = state.nodes
    assert n1.packages is not None
    assert n1.packages.os_family is OsFamily.DEBIAN
    assert (n1.packages.kubelet, n1.packages.repo_minor, n1.packages.held) == (
        "1.28.9-1.1", MinorVersion(1, 28), ("kubeadm", "kubectl", "kubelet"))
    assert n1.packages.kubeadm_binary == parse_kube_version("v1.28.9")
    assert n3.packages.held == ("kubeadm", "kubelet")
    assert state.nodes_observed
    assert state.workloads_observed
    assert state.kubectl is None
    (db,) = state.databases
    assert (db.namespace, db.name, db.instances, db.primary_pod, db.primary_node) == (
        "db", "pg", 3, "pg-1", "oldversion2")
    pdbs = {p.key: p for p in state.pdbs}
    assert pdbs["db/pg-primary"].owner == "Cluster/pg"
    assert pdbs["db/pg-primary"].pods == (
        "db/pg-1",)
    assert len(pdbs["web/frontend"].pods) == 3
    assert pdbs["web/frontend"].disruptions_allowed == 1
    scratch = next(p for p in state.pods if p.key == "default/scratch")
    assert (scratch.node, scratch.owner_kind, scratch.empty_dir) == ("oldversion3", None, True)
    mirrors = {p.name for p in state.pods if p.mirror}
    assert "kube-apiserver-oldversion1" in mirrors
    assert "etcd-oldversion1" in mirrors


async def test_rpm_nodes_and_a_node_that_cannot_be_asked(tmp_path):
    async with (Lab("rpm", time_scale=SCALE, ssh=False, state_dir=tmp_path / "s") as lab,
                await KubeClient.connect(str(lab.kubeconfig_path)) as client):
        state = await observe(client, workloads=False, node_runner=AgentsRunner(lab),
                              kubectl=False)
        broken = await observe(client, workloads=False, node_runner=Broken(), kubectl=False)
    rocky = state.nodes[0].packages
    assert rocky.os_family is OsFamily.RHEL
    assert rocky.kubelet == "1.28.9-150500.1.1"
    assert rocky.held == ("kubeadm", "kubectl", "kubelet")  # the exclude= line
    assert broken.node_errors == (("rocky3", "OSError: no route to host"),)
    assert broken.node("rocky3").packages is None


async def test_ha_api_versions_in_use(tmp_path):
    async with Lab("ha", time_scale=SCALE, ssh=False, state_dir=tmp_path / "s") as lab:
        lab.servers["cp-1"].api.deprecated_apis.append({
            "group": "batch", "version": "v1beta1", "resource": "cronjobs",
            "removed_release": "1.25"})
        endpoint = lab.endpoints["cp-1"].split("//")[1]
        async with await KubeClient.connect(str(lab.kubeconfig_path)) as client:
            state = await observe(client, workloads=False, apis=True, kubectl=False)
    assert state.apis_observed
    assert state.metrics_unreadable == ()
    (use,) = state.deprecated_api_uses
    assert (use.api_version, use.resource, use.removed_release) == ("batch/v1beta1", "cronjobs",
                                                                     "1.25")
    assert use.apiserver == endpoint
    manifests = {(m.source, m.api_version, m.kind, m.name) for m in state.manifests}
    assert ("last-applied", "apps/v1beta2", "Deployment", "api") in manifests
    assert ("helm:monitoring/flow-tuning", "flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema",
            "monitoring-scrapes") in manifests

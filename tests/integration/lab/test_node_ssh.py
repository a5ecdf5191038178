"""The upstream kubeadm upgrade guide, typed command by command over real OpenSSH, takes the
simulated 3-node cluster from 1.28 to 1.29; the classic mistakes fail as they do on real nodes."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from kubehop.data import load_release_data
from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import oldversion_spec
from kubehop.lab.history import History
from kubehop.lab.node import NodeAgents
from kubehop.model.versions import MinorVersion

SSH = shutil.which("ssh") or "/usr/bin/ssh"
pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh client")
TIMING = {"kubeletRestart": 10, "staticPodRestart": 20, "packageInstall": 8}
CP, WORKERS = "oldversion1", ("oldversion2", "oldversion3")


@pytest.fixture
async def lab(tmp_path):
    store = Store()
    populate(oldversion_spec(), store)
    history = History()
    agents = await NodeAgents.start(store, history, LabClock(0.001), TIMING, tmp_path / "lab")
    try:
        yield agents, store, history
    finally:
        await agents.stop()


async def ssh(agents: NodeAgents, node: str, command: str) -> tuple[int, str, str]:
    """Run `command` on `node` with the real ssh client, host key checked."""
    proc = await asyncio.create_subprocess_exec(
        SSH, "-F", "/dev/null", "-i", str(agents.client_key_path),
        "-o", f"UserKnownHostsFile={agents.known_hosts_path}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
        "-p", str(agents.ports[node]), f"{agents.user}@127.0.0.1", command,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def ok(agents: NodeAgents, node: str, command: str) -> str:
    code, out, err = await ssh(agents, node, command)
    assert code == 0, f"{node}$ {command}\n{out}{err}"
    return out


def kubelet_versions(store: Store) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"]
            for n in store.iter("nodes")}


def image(store: Store, component: str, node: str = CP) -> str:
    return store.get("pods", "kube-system", f"{component}-{node}")["spec"]["containers"][0]["image"]


async def upgrade_kubeadm(agents: NodeAgents, node: str) -> None:
    await ok(agents, node,
             "sudo sed -i 's/v1.28/v1.29/' /etc/apt/sources.list.d/kubernetes.list")
    await ok(agents, node, "sudo apt-get update")
    await ok(agents, node, "sudo apt-mark unhold kubeadm && sudo apt-get install -y "
                           "kubeadm='1.29.15-*' && sudo apt-mark hold kubeadm")


async def upgrade_kubelet(agents: NodeAgents, node: str) -> None:
    await ok(agents, node, "sudo apt-mark unhold kubelet kubectl && sudo apt-get update && "
                           "sudo apt-get install -y kubelet='1.29.15-*' kubectl='1.29.15-*' && "
                           "sudo apt-mark hold kubelet kubectl")
    await ok(agents, node, "sudo systemctl daemon-reload && sudo systemctl restart kubelet")


async def test_the_upgrade_guide_over_ssh_takes_the_cluster_to_1_29(lab):
    agents, store, history = lab
    # Mistake 1: a 1.29 package from the 1.28 repository.
    code, out, err = await ssh(agents, CP, "sudo apt-get install -y kubeadm=1.29.15-1.1")
    assert code == 100
    assert "E: Version '1.29.15-1.1' for 'kubeadm' was not found" in err
    await ok(agents, CP, "sudo sed -i 's/v1.28/v1.29/' /etc/apt/sources.list.d/kubernetes.list")
    await ok(agents, CP, "sudo apt-get update")
    # Mistake 2: installing a held package without unholding it.
    code, out, err = await ssh(agents, CP, "sudo apt-get install -y kubeadm='1.29.15-*'")
    assert code == 100
    assert "The following held packages will be changed:\n  kubeadm" in out
    assert err.strip() == ("E: Held packages were changed and -y was used without "
                           "--allow-change-held-packages.")
    out = await ok(agents, CP, "sudo apt-mark unhold kubeadm && sudo apt-get install -y "
                               "kubeadm='1.29.15-*' && sudo apt-mark hold kubeadm")
    assert out.startswith("Canceled hold on kubeadm.\n")
    assert out.endswith("kubeadm set on hold.\n")
    assert await ok(agents, CP, "kubeadm version -o short") == "v1.29.15\n"
    plan = await ok(agents, CP, "sudo kubeadm upgrade plan")
    assert "[upgrade/versions] Cluster version: v1.28.9" in plan
    assert "\tkubeadm upgrade apply v1.29.15\n" in plan
    # Mistake 3: skipping a minor.
    newest_130 = load_release_data().latest_patch(MinorVersion(1, 30))
    code, out, err = await ssh(agents, CP, f"sudo kubeadm upgrade apply -y {newest_130}")
    assert code == 1
    assert f'Specified version to upgrade to "{newest_130}" is too high' in err
    assert image(store, "kube-apiserver") == "registry.k8s.io/kube-apiserver:v1.28.9"

    out = await ok(agents, CP, "sudo kubeadm upgrade apply -y v1.29.15")
    assert '[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.29.15". Enjoy!' in out
    assert "[addons] Applied essential addon: kube-proxy" in out
    assert agents.apiserver_version(CP) == "v1.29.15"
    await upgrade_kubelet(agents, CP)
    for node in WORKERS:
        await upgrade_kubeadm(agents, node)
        out = await ok(agents, node, "sudo kubeadm upgrade node")
        assert "[upgrade] Skipping phase. Not a control plane node." in out
        assert "kubelet package using your package manager" in out
        await upgrade_kubelet(agents, node)
    await agents.idle()

    assert kubelet_versions(store) == {n: "v1.29.15" for n in (CP, *WORKERS)}
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert image(store, comp) == f"registry.k8s.io/{comp}:v1.29.15"
    assert image(store, "etcd") == "registry.k8s.io/etcd:3.5.16-0"
    cm = store.get("configmaps", "kube-system", "kubeadm-config")
    assert "kubernetesVersion: v1.29.15" in cm["data"]["ClusterConfiguration"]
    ds = store.get("daemonsets.apps", "kube-system", "kube-proxy")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.29.15")
    restarts = [e for e in history.since() if e["type"] == "kubelet-restart"]
    assert [(e["node"], e["from"], e["to"]) for e in restarts] == [
        (n, "v1.28.9", "v1.29.15") for n in (CP, *WORKERS)]
    commands = [e for e in history.since() if e["type"] == "command"]
    assert ["sudo", "apt-mark", "hold", "kubeadm"] in [e["argv"] for e in commands]


async def test_a_hand_edited_apiserver_manifest_misleads_kubeadm(lab):
    agents, store, _ = lab
    await ok(agents, CP, "sudo sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.29.15/' "
                         "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert not agents.apiserver_available(CP)  # the kubelet restarts the static pod
    assert agents.apiserver_version(CP) == "v1.28.9"
    await agents.idle()
    assert agents.apiserver_available(CP)
    assert agents.apiserver_version(CP) == "v1.29.15"
    assert image(store, "kube-apiserver") == "registry.k8s.io/kube-apiserver:v1.29.15"
    plan = await ok(agents, CP, "sudo kubeadm upgrade plan")
    assert "[upgrade/versions] Cluster version: v1.29.15" in plan
    cm = store.get("configmaps", "kube-system", "kubeadm-config")
    assert "kubernetesVersion: v1.28.9" in cm["data"]["ClusterConfiguration"]


async def test_only_the_lab_client_key_and_user_get_in(lab, tmp_path):
    agents, _, _ = lab
    stranger = tmp_path / "stranger"
    proc = await asyncio.create_subprocess_exec(
        "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger),
        stdout=asyncio.subprocess.DEVNULL)
    await proc.wait()
    for key, user in ((stranger, agents.user), (agents.client_key_path, "root")):
        proc = await asyncio.create_subprocess_exec(
            SSH, "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={agents.known_hosts_path}", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-p", str(agents.ports[CP]), f"{user}@127.0.0.1",
            "true", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 255
        assert b"Permission denied (publickey)" in err
    inventory = agents.inventory_path.read_text()
    assert f"port: {agents.ports[CP]}" in inventory
    assert "identityFile:" in inventory

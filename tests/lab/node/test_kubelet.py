"""The kubelet: versions change only on restart; static pods follow their manifests."""

from kubehop.lab.fixtures.specs import oldversion_spec
from kubehop.lab.node.manifests import render_static_pod

from .conftest import make_lab

CP, W = "oldversion1", "oldversion2"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


async def install_kubelet_129(lab, node):
    await lab.ok(node, f"sudo sed -i 's/v1.28/v1.29/' {LIST} && sudo apt-get update && "
                       "sudo apt-get install -y --allow-change-held-packages kubelet='1.29.15-*'")


async def test_only_a_restart_runs_the_installed_kubelet(lab):
    await install_kubelet_129(lab, W)
    assert lab.node(W)["status"]["nodeInfo"]["kubeletVersion"] == "v1.28.9"
    assert await lab.ok(W, "kubelet --version") == "Kubernetes v1.29.15\n"
    await lab.ok(W, "sudo systemctl daemon-reload && sudo systemctl restart kubelet")
    assert not lab.ready(W)
    assert lab.node(W)["status"]["nodeInfo"]["kubeletVersion"] == "v1.28.9"
    assert await lab.ok(W, "systemctl is-active kubelet") == "active\n"
    await lab.agents.idle()
    assert lab.ready(W)
    assert lab.node(W)["status"]["nodeInfo"]["kubeletVersion"] == "v1.29.15"
    (restart,) = lab.events("kubelet-restart")
    assert (restart["node"], restart["from"], restart["to"]) == (W, "v1.28.9", "v1.29.15")
    assert restart["evictable_pods"]  # no drain happened: the history shows what was still there
    assert all(not p.startswith("kube-system/kube-proxy") for p in restart["evictable_pods"])
    kubelet = [(e["version"], e["running"]) for e in lab.events("component")
               if e["component"] == "kubelet"]
    assert kubelet == [("v1.28.9", False), ("v1.29.15", True)]


async def test_a_kubelet_ahead_of_its_kubeadm_config_shows_in_history(lab):
    await install_kubelet_129(lab, W)
    await lab.ok(W, "sudo systemctl restart kubelet")
    await lab.agents.idle()
    configs = {e["node"]: e["version"] for e in lab.events("component")
               if e["component"] == "kubelet-config"}
    assert configs[W] == "v1.28.9"  # `kubeadm upgrade node` never ran
    assert lab.agents.host(W).db.state.kubelet_config == "v1.28.9"


async def test_systemctl_needs_root_and_knows_its_units(lab):
    r = await lab.sh(W, "systemctl restart kubelet")
    assert r.exit_code == 1
    assert r.stderr.startswith("Failed to restart kubelet.service: Interactive authentication")
    r = await lab.sh(W, "sudo systemctl restart kubelett")
    assert (r.exit_code, r.stderr) == (
        5, "Failed to restart kubelett.service: Unit kubelett.service not found.\n")
    await lab.ok(W, "sudo systemctl stop kubelet")
    r = await lab.sh(W, "systemctl is-active kubelet")
    assert (r.exit_code, r.stdout) == (3, "inactive\n")
    assert not lab.ready(W)


async def test_a_manifest_edit_restarts_the_static_pod(lab):
    changes = []
    lab.agents.on_apiserver_change(changes.append)
    text = render_static_pod("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.28.15", CP,
                             "127.77.0.10")
    r = await lab.agents.run(CP, f"sudo tee {MANIFEST}", stdin=text)
    assert r.exit_code == 0
    assert not lab.agents.apiserver_available(CP)
    pod = lab.store.get("pods", "kube-system", f"kube-apiserver-{CP}")
    assert not pod["status"]["containerStatuses"][0]["ready"]
    await lab.agents.idle()
    assert lab.agents.apiserver_available(CP)
    assert lab.agents.apiserver_version(CP) == "v1.28.15"
    pod = lab.store.get("pods", "kube-system", f"kube-apiserver-{CP}")
    assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-apiserver:v1.28.15"
    assert pod["status"]["containerStatuses"][0]["ready"]
    assert set(changes) == {CP}
    api = [(e["version"], e["running"]) for e in lab.events("component")
           if e["component"] == "kube-apiserver"]
    assert api[-2:] == [("v1.28.9", False), ("v1.28.15", True)]


async def test_formatting_only_edits_do_not_restart(lab):
    await lab.ok(CP, f"echo '# a comment' | sudo tee -a {MANIFEST}")
    assert lab.agents.apiserver_available(CP)
    await lab.agents.idle()
    assert not [e for e in lab.events("component") if e["component"] == "kube-apiserver"]


async def test_a_restarted_lab_finds_its_nodes_as_it_left_them(tmp_path, lab):
    await install_kubelet_129(lab, W)
    await lab.ok(W, "sudo systemctl restart kubelet")
    await lab.agents.idle()
    await lab.stop()
    lab.agents.state_dir.rename(tmp_path / "kept")
    (tmp_path / "lab").mkdir()
    (tmp_path / "kept").rename(tmp_path / "lab" / "lab")
    again = await make_lab(tmp_path / "lab", oldversion_spec())
    try:
        assert again.node(W)["status"]["nodeInfo"]["kubeletVersion"] == "v1.29.15"
        assert "/v1.29/deb/" in await again.ok(W, f"cat {LIST}")
        assert await again.ok(W, "dpkg-query -W -f='${Version}' kubelet") == "1.29.15-1.1"
    finally:
        await again.stop()

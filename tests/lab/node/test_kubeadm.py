"""kubeadm on a node: version, plan tables, apply/node with kubeadm's policy and texts."""

import json

from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec
from kubehop.lab.node.kubeadm_view import tabwrite

from .conftest import make_lab

N = "oldversion1"
LIST = "/etc/apt/sources.list.d/kubernetes.list"


async def install_kubeadm(lab, node, minor, patch):
    await lab.ok(node, f"sudo sed -i 's|/v1\\.[0-9]*/deb|/v{minor}/deb|' {LIST} && "
                       f"sudo apt-get update && sudo apt-get install -y "
                       f"--allow-change-held-packages kubeadm='{minor}.{patch}-*'")


def test_tabwrite_pads_like_go_tabwriter():
    rows = [["COMPONENT", "CURRENT", "TARGET"], ["kubelet", "3 x v1.28.9", "v1.29.15"]]
    assert tabwrite(rows) == (
        "COMPONENT   CURRENT       TARGET\nkubelet     3 x v1.28.9   v1.29.15\n")


async def test_version_outputs(lab):
    assert await lab.ok(N, "kubeadm version -o short") == "v1.28.9\n"
    doc = json.loads(await lab.ok(N, "kubeadm version -o json"))
    assert doc["clientVersion"]["gitVersion"] == "v1.28.9"
    assert (await lab.ok(N, "kubeadm version")).startswith(
        'kubeadm version: &version.Info{Major:"1", Minor:"28", GitVersion:"v1.28.9", ')


async def test_plan_before_1_30_counts_kubelets_per_version(lab):
    await install_kubeadm(lab, N, "1.29", 15)
    plan = await lab.ok(N, "sudo kubeadm upgrade plan")
    assert ("Components that must be upgraded manually after you have upgraded the control plane "
            "with 'kubeadm upgrade apply':\nCOMPONENT   CURRENT       TARGET\n"
            "kubelet     3 x v1.28.9   v1.29.15\n\nUpgrade to the latest stable version:\n\n"
            "COMPONENT                 CURRENT    TARGET\n"
            "kube-apiserver            v1.28.9    v1.29.15\n") in plan
    assert "\tkubeadm upgrade apply v1.28.15\n" in plan  # the patch upgrade comes first
    assert "Note: Before you can perform" not in plan
    old = await lab.ok("oldversion2", "kubeadm version -o short")
    assert old == "v1.28.9\n"


async def test_plan_from_1_30_lists_nodes(tmp_path):
    spec = ClusterSpec(nodes=(LabNodeSpec("cp1", roles=("control-plane",)), LabNodeSpec("w1")),
                       kubernetes_version="v1.29.15", etcd_version="3.5.16-0")
    lab = await make_lab(tmp_path, spec)
    try:
        await install_kubeadm(lab, "cp1", "1.30", 0)
        plan = await lab.ok("cp1", "sudo kubeadm upgrade plan")
        assert "[upgrade/versions] Cluster version: 1.29.15\n" in plan
        assert ("COMPONENT   NODE      CURRENT    TARGET\nkubelet     cp1       v1.29.15   v1.30."
                in plan)
        assert "\nkube-proxy                          1.29.15    v1.30." in plan
        assert "\nkube-apiserver            cp1       v1.29.15   v1.30." in plan
        note = "Note: Before you can perform this upgrade, you have to update kubeadm to v1.30."
        assert note in plan
    finally:
        await lab.stop()


async def test_apply_asks_first_and_needs_root(lab):
    await install_kubeadm(lab, N, "1.29", 15)
    r = await lab.sh(N, "sudo kubeadm upgrade apply v1.29.15")
    assert r.exit_code == 1
    assert r.stdout.endswith("[upgrade] Are you sure you want to proceed? [y/N]: ")
    assert r.stderr.startswith("won't proceed; the user didn't answer (Y|n) in order to continue\n")
    r = await lab.sh(N, "kubeadm upgrade apply -y v1.29.15")
    assert "open /etc/kubernetes/admin.conf: permission denied" in r.stderr
    r = await lab.sh("oldversion2", "sudo kubeadm upgrade apply -y v1.29.15")
    assert "open /etc/kubernetes/admin.conf: no such file or directory" in r.stderr


async def test_patch_target_newer_than_kubeadm_needs_force(lab):
    r = await lab.sh(N, "sudo kubeadm upgrade apply -y v1.28.15")
    assert r.exit_code == 1
    assert ('Specified version to upgrade to "v1.28.15" is higher than the kubeadm version '
            '"v1.28.9". Upgrade kubeadm first') in r.stderr
    assert "Can be bypassed if you pass the --force flag" in r.stderr
    r = await lab.sh(N, "sudo kubeadm upgrade apply -y --force v1.28.15")
    assert r.exit_code == 0
    assert "[upgrade/version] Found 1 potential version compatibility errors" in r.stdout
    assert lab.agents.apiserver_version(N) == "v1.28.15"


async def test_reapplying_the_running_version_skips_equal_manifests(lab):
    out = await lab.ok(N, "sudo kubeadm upgrade apply -y v1.28.9")
    for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert f"Current and new manifests of {comp} are equal, skipping upgrade" in out
    assert not [e for e in lab.events("component") if e["component"] == "kube-apiserver"]


async def test_upgrade_node_on_a_worker_writes_only_the_kubelet_config(lab):
    await install_kubeadm(lab, N, "1.29", 15)
    await lab.ok(N, "sudo kubeadm upgrade apply -y v1.29.15")
    out = await lab.ok("oldversion2", "sudo kubeadm upgrade node")
    assert "[preflight] Skipping prepull. Not a control plane node.\n" in out
    config = [e for e in lab.events("component") if e["component"] == "kubelet-config"]
    assert (config[-1]["node"], config[-1]["version"]) == ("oldversion2", "v1.29.15")


async def test_upgrade_node_checks_no_version_skew_only_the_host(lab):
    """Upstream's `upgrade node` preflight is the root check and SystemVerification: a worker's
    kubeadm may jump minors (1.28 → 1.31 here); a cgroup v1 host gets kubeadm 1.31's warning."""
    await install_kubeadm(lab, "oldversion2", "1.31", 14)
    await install_kubeadm(lab, "oldversion3", "1.31", 14)
    lab.agents.cluster.inject("cgroup-v1", "oldversion3", {})
    jumped = await lab.sh("oldversion2", "sudo kubeadm upgrade node")
    assert jumped.exit_code == 0
    assert "SystemVerification" not in jumped.stderr
    v1 = await lab.sh("oldversion3", "sudo kubeadm upgrade node")
    assert v1.exit_code == 0
    assert ("\t[WARNING SystemVerification]: cgroups v1 support is in maintenance mode, please "
            "migrate to cgroups v2\n") in v1.stderr


async def test_ha_addons_wait_for_the_last_control_plane(ha_lab):
    lab = ha_lab
    for node in ("cp1", "cp2"):
        await install_kubeadm(lab, node, "1.29", 15)
    await lab.ok("cp2", "sudo systemctl stop kubelet")
    r = await lab.sh("cp1", "sudo kubeadm upgrade apply -y v1.29.15")
    assert r.exit_code == 2
    assert ("[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: "
            "[cp2]") in r.stderr
    await lab.ok("cp2", "sudo systemctl start kubelet")
    await lab.agents.idle()
    out = await lab.ok("cp1", "sudo kubeadm upgrade apply -y v1.29.15")
    assert ("[upgrade/addons] skip upgrade addons because control plane instances [cp2] have not "
            "been upgraded\n") in out
    dns = lab.store.get("deployments.apps", "kube-system", "coredns")
    assert dns["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.10.1")
    assert lab.agents.apiserver_version("cp2") == "v1.28.9"
    out = await lab.ok("cp2", "sudo kubeadm upgrade node")
    assert 'Upgrading your Static Pod-hosted control plane instance to version "v1.29.15"' in out
    assert "[addons] Applied essential addon: CoreDNS\n" in out
    assert lab.agents.apiserver_version("cp2") == "v1.29.15"
    dns = lab.store.get("deployments.apps", "kube-system", "coredns")
    assert dns["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.11.1")


async def test_a_kubelet_that_never_restarts_the_pod_makes_kubeadm_roll_back(lab):
    await install_kubeadm(lab, N, "1.29", 15)
    await lab.ok(N, "sudo systemctl stop kubelet")
    r = await lab.sh(N, "sudo kubeadm upgrade apply -y --ignore-preflight-errors=all v1.29.15")
    assert r.exit_code == 1
    assert "couldn't upgrade control plane. kubeadm has tried to recover everything" in r.stderr
    manifest = await lab.ok(N, "sudo cat /etc/kubernetes/manifests/etcd.yaml")
    assert "image: registry.k8s.io/etcd:3.5.12-0" in manifest


async def test_plan_without_an_answering_apiserver(lab):
    await lab.ok(N, "sudo sed -i 's/^kind: Pod/kind: Broken/' "
                    "/etc/kubernetes/manifests/kube-apiserver.yaml")
    await lab.agents.idle()
    assert not lab.agents.apiserver_available(N)
    r = await lab.sh(N, "sudo kubeadm upgrade plan")
    assert r.exit_code == 1
    assert "dial tcp 127.77.0.10:6443: connect: connection refused" in r.stderr


async def test_config_images_list(lab):
    out = await lab.ok(N, "kubeadm config images list")
    assert out.splitlines() == [
        "registry.k8s.io/kube-apiserver:v1.28.9", "registry.k8s.io/kube-controller-manager:v1.28.9",
        "registry.k8s.io/kube-scheduler:v1.28.9", "registry.k8s.io/kube-proxy:v1.28.9",
        "registry.k8s.io/coredns/coredns:v1.10.1", "registry.k8s.io/pause:3.9",
        "registry.k8s.io/etcd:3.5.12-0"]

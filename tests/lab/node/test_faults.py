"""Injected node faults: `package-install-fails` (apt and dnf fail to download the package and
install nothing) and `static-pod-never-ready` (the component's new pod keeps crashing, kubeadm
times out and rolls its manifests back)."""


from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec

from .conftest import make_lab

CP = "oldversion1"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
REPO = "/etc/yum.repos.d/kubernetes.repo"
CDN = "https://prod-cdn.packages.k8s.io/repositories/isv:/kubernetes:/core:/stable:/v1.28/deb"
MANIFESTS = "/etc/kubernetes/manifests"
ROLLED_BACK = ("couldn't upgrade control plane. kubeadm has tried to recover everything into the "
               "earlier state. Errors faced: ")


async def install_kubeadm(lab, node, minor, patch):
    await lab.ok(node, f"sudo sed -i 's|/v1\\.[0-9]*/deb|/v{minor}/deb|' {LIST} && "
                       f"sudo apt-get update && sudo apt-get install -y "
                       f"--allow-change-held-packages kubeadm='{minor}.{patch}-*'")


def mirror(lab, comp, node):
    return lab.store.get("pods", "kube-system", f"{comp}-{node}")


def ready(pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


async def test_apt_cannot_fetch_the_package_and_installs_nothing(lab):
    lab.agents.cluster.inject("package-install-fails", "oldversion2", {"package": "kubeadm"})
    before = await lab.ok("oldversion2", "dpkg -l")
    r = await lab.sh("oldversion2", "sudo apt-get install -y --allow-change-held-packages "
                                    "kubelet=1.28.15-1.1 kubeadm=1.28.15-1.1")
    assert r.exit_code == 100
    assert r.stderr == (
        f"E: Failed to fetch {CDN}/amd64/kubeadm_1.28.15-1.1_amd64.deb  Could not connect to "
        "prod-cdn.packages.k8s.io:443 (18.239.50.12), connection timed out [IP: 18.239.50.12 "
        "443]\nE: Unable to fetch some archives, maybe run apt-get update or try with "
        "--fix-missing?\n")
    assert f"Get:1 {CDN}  kubelet 1.28.15-1.1 [20.5 MB]\n" in r.stdout
    assert (f"Err:2 {CDN}  kubeadm 1.28.15-1.1\n  Could not connect to prod-cdn.packages.k8s.io"
            ":443 (18.239.50.12), connection timed out\n") in r.stdout
    assert "Setting up" not in r.stdout
    assert "Unpacking" not in r.stdout
    # apt fetches every archive before dpkg runs: neither package changed, holds included.
    assert await lab.ok("oldversion2", "dpkg -l") == before
    assert "hi  kubeadm        1.28.9-1.1" in before
    assert await lab.ok("oldversion2", "kubeadm version -o short") == "v1.28.9\n"
    # Another package on that node, and the same package on another node, install.
    await lab.ok("oldversion2", "sudo apt-get install -y --allow-change-held-packages "
                                "kubelet=1.28.15-1.1")
    await lab.ok("oldversion3", "sudo apt-get install -y --allow-change-held-packages "
                                "kubeadm=1.28.15-1.1")
    assert await lab.ok("oldversion3", "kubeadm version -o short") == "v1.28.15\n"
    assert "kubeadm" in await lab.ok("oldversion2", "apt-mark showhold")


async def test_a_fault_without_a_package_breaks_every_download(lab):
    lab.agents.cluster.inject("package-install-fails", "oldversion3", {"package": ""})
    await install_kubeadm(lab, CP, "1.29", 15)  # another node: unaffected
    r = await lab.sh("oldversion3", "sudo apt-get install -y --allow-change-held-packages "
                                    "kubectl=1.28.15-1.1")
    assert r.exit_code == 100
    assert "E: Failed to fetch" in r.stderr
    assert "kubectl_1.28.15-1.1_amd64.deb" in r.stderr
    assert "Fetched" not in r.stdout
    assert "hi  kubectl        1.28.9-1.1" in await lab.ok("oldversion3", "dpkg -l kubectl")


async def test_dnf_cannot_download_the_package_and_installs_nothing(rpm_lab):
    lab = rpm_lab
    lab.agents.cluster.inject("package-install-fails", "cp1", {"package": "kubelet"})
    await lab.ok("cp1", "sudo dnf versionlock add kubelet kubeadm")
    locks = await lab.ok("cp1", "dnf versionlock list")
    await lab.ok("cp1", f"sudo sed -i 's/v1.28/v1.29/g' {REPO}")
    r = await lab.sh("cp1", "sudo yum install -y kubelet-1.29.15-150500.1.1 "
                            "--disableexcludes=kubernetes --disableplugin=versionlock")
    assert r.exit_code == 1
    url = ("https://pkgs.k8s.io/core:/stable:/v1.29/rpm/x86_64/"
           "kubelet-1.29.15-150500.1.1.x86_64.rpm")
    why = (f"Curl error (28): Timeout was reached for {url} [Connection timed out after 30000 "
           "milliseconds]")
    assert r.stderr == (f"[MIRROR] kubelet-1.29.15-150500.1.1.x86_64.rpm: {why}\n"
                        f"[FAILED] kubelet-1.29.15-150500.1.1.x86_64.rpm: {why}\n"
                        f"Error: Error downloading packages:\n  {why}\n")
    assert "You can remove cached packages by executing 'yum clean packages'." in r.stdout
    assert "Running transaction" not in r.stdout
    assert await lab.ok("cp1", "rpm -q kubelet") == "kubelet-1.28.9-150500.1.1.x86_64\n"
    assert await lab.ok("cp1", "dnf versionlock list") == locks
    out = await lab.ok("cp1", "sudo dnf install -y kubeadm-1.29.15-150500.1.1 "
                              "--disableexcludes=kubernetes --disableplugin=versionlock")
    assert out.endswith("Complete!\n")


async def test_a_crashing_static_pod_shows_in_its_mirror_pod(lab):
    lab.agents.cluster.inject("static-pod-never-ready", CP, {"component": "kube-scheduler"})
    path = f"{MANIFESTS}/kube-scheduler.yaml"
    await lab.ok(CP, f"sudo sed -i 's/kube-scheduler:v1.28.9/kube-scheduler:v1.28.15/' {path}")
    await lab.agents.idle()  # the restart is done; the crash loop does not keep idle() waiting
    await lab.clock.advance(200)  # back-offs of 10, 20, 40 and 80 s
    pod = mirror(lab, "kube-scheduler", CP)
    status = pod["status"]["containerStatuses"][0]
    assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.28.15"
    assert pod["status"]["phase"] == "Running"
    assert not ready(pod)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["restartCount"] >= 3
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert "kube-scheduler" not in await lab.ok(CP, "sudo crictl ps")
    down = [e for e in lab.events("component") if e["component"] == "kube-scheduler"]
    assert (down[-1]["version"], down[-1]["running"]) == ("v1.28.9", False)
    # Back to the original manifest: the component runs again.
    await lab.ok(CP, f"sudo sed -i 's/kube-scheduler:v1.28.15/kube-scheduler:v1.28.9/' {path}")
    await lab.agents.idle()
    pod = mirror(lab, "kube-scheduler", CP)
    assert ready(pod)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    up = [e for e in lab.events("component") if e["component"] == "kube-scheduler"]
    assert (up[-1]["version"], up[-1]["running"]) == ("v1.28.9", True)


async def test_kubeadm_apply_times_out_on_a_crashing_apiserver_and_rolls_back(lab):
    lab.agents.cluster.inject("static-pod-never-ready", CP, {"component": "kube-apiserver"})
    await install_kubeadm(lab, CP, "1.29", 15)
    t0 = lab.agents.clock.now()
    r = await lab.sh(CP, "sudo kubeadm upgrade apply -y v1.29.15")
    assert r.exit_code == 1
    assert lab.agents.clock.now() - t0 >= 300  # kubeadm's 5 minutes, in lab time
    assert r.stderr == (
        f"[upgrade/apply] FATAL: {ROLLED_BACK}failed to obtain static Pod hash for component "
        "kube-apiserver on Node oldversion1: Get \"https://127.77.0.10:6443/api/v1/namespaces/"
        "kube-system/pods/kube-apiserver-oldversion1?timeout=10s\": dial tcp 127.77.0.10:6443: "
        "connect: connection refused\n"
        "To see the stack trace of this error execute with --v=5 or higher\n")
    assert 'Component "etcd" upgraded successfully!' in r.stdout
    assert "SUCCESS" not in r.stdout
    # The kube-apiserver manifest is the old one again (etcd's stays: kubeadm keeps it).
    assert "kube-apiserver:v1.28.9" in await lab.ok(CP, f"sudo cat {MANIFESTS}/kube-apiserver.yaml")
    assert "etcd:3.5.16-0" in await lab.ok(CP, f"sudo cat {MANIFESTS}/etcd.yaml")
    for comp in ("kube-controller-manager", "kube-scheduler"):
        assert ":v1.28.9" in await lab.ok(CP, f"sudo cat {MANIFESTS}/{comp}.yaml")
    await lab.agents.idle()
    assert lab.agents.apiserver_available(CP)
    assert lab.agents.apiserver_version(CP) == "v1.28.9"
    assert ready(mirror(lab, "kube-apiserver", CP))
    cm = lab.store.get("configmaps", "kube-system", "kubeadm-config")
    assert "kubernetesVersion: v1.28.9" in cm["data"]["ClusterConfiguration"]


async def test_a_failed_component_takes_the_ones_upgraded_before_it_back(tmp_path):
    spec = ClusterSpec(nodes=(LabNodeSpec("cp1", roles=("control-plane",)),
                              LabNodeSpec("cp2", roles=("control-plane",)), LabNodeSpec("w1")))
    lab = await make_lab(tmp_path, spec)
    try:
        lab.agents.cluster.inject("static-pod-never-ready", "cp1",
                                  {"component": "kube-controller-manager"})
        for node in ("cp1", "cp2"):
            await install_kubeadm(lab, node, "1.29", 15)
        r = await lab.sh("cp1", "sudo kubeadm upgrade apply -y v1.29.15")
        assert r.exit_code == 1
        assert r.stderr.startswith(f"[upgrade/apply] FATAL: {ROLLED_BACK}context deadline "
                                   "exceeded\n")
        assert r.stdout.endswith(
            "[upgrade/staticpods] This can take up to 5m0s\n"
            "[apiclient] Found 1 Pods for label selector component=kube-controller-manager\n")
        assert 'Component "kube-apiserver" upgraded successfully!' in r.stdout
        for comp in ("kube-apiserver", "kube-controller-manager"):
            manifest = await lab.ok("cp1", f"sudo cat {MANIFESTS}/{comp}.yaml")
            assert f"{comp}:v1.28.9" in manifest
        await lab.agents.idle()
        assert lab.agents.apiserver_version("cp1") == "v1.28.9"
        assert ready(mirror(lab, "kube-controller-manager", "cp1"))
        # The fault is cp1's: cp2 upgrades.
        out = await lab.ok("cp2", "sudo kubeadm upgrade apply -y v1.29.15")
        assert "SUCCESS! Your cluster was upgraded to \"v1.29.15\"" in out
        assert lab.agents.apiserver_version("cp2") == "v1.29.15"
    finally:
        await lab.stop()


async def test_a_crashing_etcd_is_rolled_back_with_kubeadms_etcd_messages(lab):
    lab.agents.cluster.inject("static-pod-never-ready", CP, {"component": "etcd"})
    await install_kubeadm(lab, CP, "1.29", 15)
    r = await lab.sh(CP, "sudo kubeadm upgrade apply -y v1.29.15")
    assert r.exit_code == 1
    assert r.stderr.startswith(
        "[upgrade/apply] FATAL: fatal error when trying to upgrade the etcd cluster, rolled the "
        f"state back to pre-upgrade state: {ROLLED_BACK}context deadline exceeded\n")
    assert ("[upgrade/etcd] Waiting for previous etcd to become available\n"
            "[upgrade/etcd] Etcd was rolled back and is now available\n") in r.stdout
    assert "etcd:3.5.12-0" in await lab.ok(CP, f"sudo cat {MANIFESTS}/etcd.yaml")
    assert "kube-apiserver:v1.28.9" in await lab.ok(CP, f"sudo cat {MANIFESTS}/kube-apiserver.yaml")


async def test_kubeadm_upgrade_node_wraps_the_error_like_kubeadm(tmp_path):
    spec = ClusterSpec(nodes=(LabNodeSpec("cp1", roles=("control-plane",)),
                              LabNodeSpec("cp2", roles=("control-plane",))))
    lab = await make_lab(tmp_path, spec)
    try:
        lab.agents.cluster.inject("static-pod-never-ready", "cp2", {"component": "kube-scheduler"})
        for node in ("cp1", "cp2"):
            await install_kubeadm(lab, node, "1.29", 15)
        await lab.ok("cp1", "sudo kubeadm upgrade apply -y v1.29.15")
        r = await lab.sh("cp2", "sudo kubeadm upgrade node")
        assert r.exit_code == 1
        assert r.stderr.startswith(
            "error execution phase control-plane: couldn't complete the static pod upgrade: "
            f"{ROLLED_BACK}context deadline exceeded\n")
        manifest = await lab.ok("cp2", f"sudo cat {MANIFESTS}/kube-scheduler.yaml")
        assert "kube-scheduler:v1.28.9" in manifest
    finally:
        await lab.stop()

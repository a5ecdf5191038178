"""dnf/yum and rpm on a RHEL-family node: excludes, versionlock, per-minor repositories."""

N = "cp1"
REPO = "/etc/yum.repos.d/kubernetes.repo"


async def test_the_repo_file_excludes_kubernetes_packages(rpm_lab):
    assert "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni" in await rpm_lab.ok(
        N, f"cat {REPO}")
    assert await rpm_lab.ok(N, "rpm -q kubeadm") == "kubeadm-1.28.9-150500.1.1.x86_64\n"
    r = await rpm_lab.sh(N, "sudo yum install -y kubeadm-1.28.15-*")
    assert r.exit_code == 1
    assert ("All matches were filtered out by exclude filtering for argument: "
            "kubeadm-1.28.15-*\n") in r.stdout
    assert r.stderr == "Error: Unable to find a match: kubeadm-1.28.15-*\n"


async def test_minor_upgrade_with_disableexcludes_after_editing_the_repo(rpm_lab):
    r = await rpm_lab.sh(N, "sudo yum install -y kubeadm-'1.29.15-*' --disableexcludes=kubernetes")
    assert (r.exit_code, r.stderr) == (1, "Error: Unable to find a match: kubeadm-1.29.15-*\n")
    assert "No match for argument: kubeadm-1.29.15-*" in r.stdout
    await rpm_lab.ok(N, f"sudo sed -i 's/v1.28/v1.29/g' {REPO}")
    out = await rpm_lab.ok(N, "sudo dnf install -y kubeadm-'1.29.15-*' "
                              "--disableexcludes=kubernetes")
    assert "Upgrading:\n kubeadm" in out
    assert out.endswith("Complete!\n")
    assert await rpm_lab.ok(N, "kubeadm version -o short") == "v1.29.15\n"
    r = await rpm_lab.sh(N, "yum install -y kubelet --disableexcludes=kubernetes")
    assert r.stderr.startswith("Error: This command has to be run with superuser privileges")


async def test_versionlock_and_list(rpm_lab):
    assert "Adding versionlock on: kubelet-0:1.28.9-150500.1.1.*" in await rpm_lab.ok(
        N, "sudo dnf versionlock add kubelet")
    r = await rpm_lab.sh(N, "sudo dnf install -y kubelet-1.28.15 --disableexcludes=kubernetes")
    assert r.exit_code == 1
    assert "filtered out by exclude filtering" in r.stdout
    listing = await rpm_lab.ok(N, "yum list --showduplicates kubeadm --disableexcludes=kubernetes")
    assert "Installed Packages\nkubeadm.x86_64" in listing
    assert "1.28.15-150500.1.1" in listing
    r = await rpm_lab.sh(N, "yum list kubeadm-1.99*")
    assert r.stderr == "Error: No matching Packages to list\n"


async def test_the_retired_yum_repository_fails_metadata(rpm_lab):
    legacy = "https://packages.cloud.google.com/yum/repos/kubernetes-el7-x86_64"
    await rpm_lab.ok(N, f"sudo sed -i 's|https://pkgs.k8s.io/core:/stable:/v1.28/rpm/|{legacy}|' "
                        f"{REPO}")
    r = await rpm_lab.sh(N, "sudo yum install -y kubeadm --disableexcludes=kubernetes")
    assert r.exit_code == 1
    assert "Status code: 404 for https://packages.cloud.google.com" in r.stderr


async def test_kubeadm_130_upgrades_cri_tools_unless_it_is_locked(rpm_lab):
    """kubeadm 1.30 requires cri-tools >= 1.30.0: dnf upgrades it past `exclude=` with the
    same `--disableexcludes`, and a versionlocked cri-tools leaves nothing to provide it."""
    await rpm_lab.ok("cp1", "sudo sed -i 's/v1.28/v1.30/g' /etc/yum.repos.d/kubernetes.repo")
    await rpm_lab.ok("cp1", "sudo dnf versionlock add cri-tools")
    r = await rpm_lab.sh("cp1", "sudo dnf install -y 'kubeadm-1.30.14-*' "
                                "--disableexcludes=kubernetes")
    assert r.exit_code == 1
    assert ("  - nothing provides cri-tools >= 1.30.0 needed by "
            "kubeadm-1.30.14-150500.1.1.x86_64 from kubernetes\n") in r.stderr
    await rpm_lab.ok("cp1", "sudo dnf versionlock delete cri-tools")
    out = await rpm_lab.ok("cp1", "sudo dnf install -y 'kubeadm-1.30.14-*' "
                                  "--disableexcludes=kubernetes")
    assert "Upgrade  2 Packages" in out
    assert await rpm_lab.ok("cp1", "rpm -q cri-tools") == "cri-tools-1.30.0-150500.1.1.x86_64\n"

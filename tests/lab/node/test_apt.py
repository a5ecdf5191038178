"""apt-get, apt-mark, apt-cache and dpkg answer like real apt (messages seen with apt 2.6)."""

N = "oldversion1"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
HEADER = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n"


async def switch_to_129(lab, node=N):
    await lab.ok(node, f"sudo sed -i 's/v1.28/v1.29/' {LIST} && sudo apt-get update")


async def test_a_version_from_another_minor_is_not_found(lab):
    r = await lab.sh(N, "sudo apt-get install -y kubeadm=1.29.15-1.1")
    assert r.exit_code == 100
    assert r.stdout == HEADER + (
        "Package kubeadm is not available, but is referred to by another package.\n"
        "This may mean that the package is missing, has been obsoleted, or\n"
        "is only available from another source\n\n")
    assert r.stderr == "E: Version '1.29.15-1.1' for 'kubeadm' was not found\n"
    r = await lab.sh(N, "sudo apt-get install -y helm")
    assert (r.exit_code, r.stderr) == (100, "E: Unable to locate package helm\n")


async def test_switching_the_source_needs_an_update(lab):
    await lab.ok(N, f"sudo sed -i 's/v1.28/v1.29/' {LIST}")
    policy = await lab.ok(N, "apt-cache policy kubeadm")
    assert "  Candidate: 1.28.9-1.1\n" in policy  # the 1.28 lists no longer apply, 1.29's not yet
    r = await lab.sh(N, "sudo apt-get update")
    assert r.exit_code == 0
    assert "v1.29/deb  InRelease" in r.stdout
    assert r.stdout.endswith("Reading package lists...\n")
    assert "Hit:1" in (await lab.sh(N, "sudo apt-get update")).stdout
    assert (await lab.ok(N, "apt-cache madison kubeadm")).splitlines()[0] == (
        "   kubeadm | 1.29.15-1.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages")


async def test_held_packages_need_unhold_or_the_flag(lab):
    await switch_to_129(lab)
    r = await lab.sh(N, "sudo apt-get install -y kubeadm='1.29.15-*'")
    assert r.exit_code == 100
    assert r.stdout == HEADER + (
        "The following held packages will be changed:\n  kubeadm\n"
        "The following packages will be upgraded:\n  kubeadm\n"
        "1 upgraded, 0 newly installed, 0 to remove and 4 not upgraded.\n")
    assert r.stderr == ("E: Held packages were changed and -y was used without "
                        "--allow-change-held-packages.\n")
    r = await lab.sh(N, "sudo apt-get install kubeadm='1.29.15-*'")  # no -y, no answer
    assert r.exit_code == 1
    assert r.stdout.endswith("Do you want to continue? [Y/n] Abort.\n")
    out = await lab.ok(N, "sudo apt-get install -y --allow-change-held-packages "
                          "kubeadm='1.29.15-*'")
    assert "Unpacking kubeadm (1.29.15-1.1) over (1.28.9-1.1) ...\n" in out
    assert await lab.ok(N, "apt-mark showhold") == "kubeadm\nkubectl\nkubelet\n"
    assert await lab.ok(N, "dpkg-query -W -f='${Version}' kubeadm") == "1.29.15-1.1"


async def test_apt_mark_messages(lab):
    assert await lab.ok(N, "sudo apt-mark unhold kubeadm kubelet") == (
        "Canceled hold on kubeadm.\nCanceled hold on kubelet.\n")
    assert await lab.ok(N, "sudo apt-mark unhold kubeadm") == "kubeadm was already not on hold.\n"
    assert await lab.ok(N, "sudo apt-mark hold kubeadm") == "kubeadm set on hold.\n"
    assert await lab.ok(N, "sudo apt-mark hold kubeadm") == "kubeadm was already set on hold.\n"
    r = await lab.sh(N, "apt-mark hold kubeadm")
    assert (r.exit_code, r.stderr) == (100, "dpkg: error: requested operation requires superuser "
                                            "privilege\nE: Executing dpkg failed. Are you root?\n")


async def test_downgrades_need_allow_downgrades(lab):
    await lab.ok(N, "sudo apt-mark unhold kubectl")
    await lab.ok(N, "sudo apt-get install -y kubectl=1.28.15-1.1")
    r = await lab.sh(N, "sudo apt-get install -y kubectl=1.28.9-1.1")
    assert r.exit_code == 100
    assert "The following packages will be DOWNGRADED:\n  kubectl\n" in r.stdout
    assert r.stderr == "E: Packages were downgraded and -y was used without --allow-downgrades.\n"
    r = await lab.sh(N, "sudo apt-get install -y --allow-downgrades kubectl=1.28.9-1.1")
    assert r.exit_code == 0
    assert "dpkg: warning: downgrading kubectl from 1.28.15-1.1 to 1.28.9-1.1" in r.stderr


async def test_same_version_and_candidate_pins(lab):
    out = await lab.ok(N, "sudo apt-get install -y kubeadm=1.28.9-1.1")
    assert "kubeadm is already the newest version (1.28.9-1.1).\n" in out
    pref = "Package: kubectl\\nPin: version 1.28.9-*\\nPin-Priority: 1001\\n"
    await lab.ok(N, f"printf '{pref}' | sudo tee /etc/apt/preferences.d/kubernetes >/dev/null")
    policy = await lab.ok(N, "apt-cache policy kubectl kubelet")
    assert "kubectl:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.9-1.1\n" in policy
    assert "kubelet:\n  Installed: 1.28.9-1.1\n  Candidate: 1.28.15-1.1\n" in policy
    assert " *** 1.28.9-1.1 1001\n" in policy


async def test_the_retired_legacy_repository_is_dead(lab):
    legacy = "deb https://apt.kubernetes.io/ kubernetes-xenial main"
    await lab.ok(N, f"echo '{legacy}' | sudo tee {LIST}")
    r = await lab.sh(N, "sudo apt-get update")
    assert r.exit_code == 100
    assert "Err:2 https://packages.cloud.google.com/apt kubernetes-xenial Release\n" in r.stdout
    assert r.stderr.startswith("E: The repository 'https://apt.kubernetes.io kubernetes-xenial "
                               "Release' does not have a Release file.\n")


async def test_non_root_and_dpkg_views(lab):
    r = await lab.sh(N, "apt-get install -y kubeadm")
    assert r.exit_code == 100
    assert "are you root?" in r.stderr
    assert await lab.ok(N, "dpkg-query -W kubelet") == "kubelet\t1.28.9-1.1\n"
    r = await lab.sh(N, "dpkg-query -W helm")
    assert (r.exit_code, r.stderr) == (1, "dpkg-query: no packages found matching helm\n")
    assert "hi  kubeadm" in await lab.ok(N, "dpkg -l kubeadm")
    assert (await lab.sh(N, "dpkg --compare-versions 1.29.3-1.1 gt 1.29.10-1.1")).exit_code == 1


async def test_kubeadm_130_takes_cri_tools_along_unless_it_is_held(lab):
    """pkgs.k8s.io's kubeadm 1.30 requires cri-tools >= 1.30.0 (kubernetes/release
    cmd/krel/templates/latest/metadata.yaml): apt installs it as an additional package, and a
    held cri-tools is an unmet dependency."""
    await lab.ok(N, f"sudo sed -i 's/v1.28/v1.30/' {LIST} && sudo apt-get update")
    await lab.ok(N, "sudo apt-mark unhold kubeadm && sudo apt-mark hold cri-tools")
    r = await lab.sh(N, "sudo apt-get install -y 'kubeadm=1.30.14-*'")
    assert r.exit_code == 100
    assert r.stdout.endswith("The following packages have unmet dependencies:\n kubeadm : "
                             "Depends: cri-tools (>= 1.30.0) but 1.28.0-1.1 is to be installed\n")
    assert r.stderr == "E: Unable to correct problems, you have held broken packages.\n"
    await lab.ok(N, "sudo apt-mark unhold cri-tools")
    out = await lab.ok(N, "sudo apt-get install -y 'kubeadm=1.30.14-*'")
    assert "The following additional packages will be installed:\n  cri-tools\n" in out
    assert "2 upgraded, 0 newly installed, 0 to remove" in out
    assert await lab.ok(N, "dpkg-query -W -f='${Version}' cri-tools") == "1.30.0-1.1"

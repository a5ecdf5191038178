"""`kubehop upgrade --to 1.30 --yes` of the `rpm` lab (Rocky Linux 9 nodes, dnf, a pkgs.k8s.io
yum repository pinned by its `exclude=` line) over SSH: every component at the target, each
node's kubernetes.repo pointing at v1.30 and still excluding the Kubernetes packages (so a
routine `dnf upgrade` leaves them alone), no versionlock added, the invariants intact."""

from __future__ import annotations

import json
import re

from tests.integration.upgrade.conftest import TODAY, Upgrade
from tests.integration.upgrade.test_upgrade import assert_upgraded

TARGET = "v1.30.14"
NODES = ("rocky1", "rocky2", "rocky3")
REPO_FILE = "/etc/yum.repos.d/kubernetes.repo"
EXCLUDE = "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni"


def node_run(up: Upgrade, node: str, line: str, *, root: bool = False) -> tuple[int, str, str]:
    """`line` on the lab node as its SSH login user would run it (root: as root)."""
    assert up.lab.agents is not None
    done = up.lt.wait(up.lab.agents.run(node, line, root=root))
    return done.exit_code, done.stdout, done.stderr


def test_rpm_nodes_from_128_to_130_keep_their_packages_excluded(upgrade_lab):
    up = upgrade_lab("rpm")
    for node in NODES:  # the starting point the assertions below move away from
        code, repo, _ = node_run(up, node, f"cat {REPO_FILE}")
        assert code == 0
        assert "pkgs.k8s.io/core:/stable:/v1.28/rpm/" in repo
        assert EXCLUDE in repo

    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "finished:" in done.stdout

    events = assert_upgraded(up)  # components at the target, invariants, nothing cordoned
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in up.lt.nodes()} == {TARGET}

    # What dnf was asked to do: the packages installed past the exclusion, never by lifting it
    # for good, and no yum/dnf invocation without an exact version.
    commands = [e["argv"] for e in events if e["type"] == "command"]
    installs = [argv for argv in commands if argv[:1] in (["yum"], ["dnf"])
                or argv[2:3] in (["yum"], ["dnf"])]
    assert installs, "no yum/dnf command reached the nodes"
    for argv in installs:
        words = [w for w in argv if w not in ("sudo", "-n")]
        if words[1] == "install":
            assert "--disableexcludes=kubernetes" in words, argv
            specs = [w for w in words[2:] if not w.startswith("-")]
            assert specs, argv
            # A patch with any build (`kubeadm-1.29.15-*`, the upstream guide's form).
            assert all(re.fullmatch(r"kube(adm|let|ctl)-1\.\d+\.\d+-\*", w) for w in specs), argv
    assert not [argv for argv in commands if "versionlock" in argv and "list" not in argv]

    for node in NODES:
        code, repo, _ = node_run(up, node, f"cat {REPO_FILE}")
        assert code == 0
        assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.30/rpm/" in repo, (node, repo)
        assert "v1.28" not in repo
        assert "v1.29" not in repo
        assert EXCLUDE in repo.splitlines(), (node, repo)
        code, out, _ = node_run(up, node, "rpm -q --qf '%{NAME} %{VERSION}\\n' kubeadm kubelet "
                                          "kubectl")
        assert (code, out) == (0, "kubeadm 1.30.14\nkubelet 1.30.14\nkubectl 1.30.14\n"), node
        # Excluded again: a plain dnf sees none of the older 1.30 patches the repository
        # holds, which it lists past the exclusion.
        code, _, err = node_run(up, node, "dnf list --showduplicates available kubeadm kubelet")
        assert (code, err) == (1, "Error: No matching Packages to list\n"), node
        code, out, _ = node_run(up, node, "dnf list --showduplicates --disableexcludes="
                                          "kubernetes available kubeadm")
        assert code == 0
        assert "1.30.13-150500.1.1" in out, out
        code, out, _ = node_run(up, node, "dnf versionlock list")
        assert code == 0
        assert "kube" not in out, out

    # kubehop itself agrees: nothing unheld, nothing on a stale repository.
    check = up.kubehop("check", "-o", "json", "--today", TODAY)
    findings = {f["id"] for f in json.loads(check.stdout)["findings"]}
    assert not {f for f in findings if f.startswith("packages.")}, findings

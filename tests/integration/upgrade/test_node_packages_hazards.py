"""Upgrades of lab clusters whose nodes carry the package-manager hazards of issue #14, judged
from the lab's history and the nodes themselves: another vendor's broken apt source and the
dpkg lock held by unattended-upgrades do not stop the upgrade; an unreachable pkgs.k8s.io halts
it at the refresh, holds intact; a second Kubernetes source is reported before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubehop.lab import scenarios
from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY, Upgrade


def scenario(tmp_path: Path, faults: str) -> str:
    text = (Path(scenarios.__file__).parent / "builtin" / "oldversion.yaml").read_text()
    text = text.replace("faults: []\n", "").replace("name: oldversion\n", "name: hazards\n")
    path = tmp_path / "hazards.yaml"
    path.write_text(text + "\nfaults:\n" + faults)
    return str(path)


def node_run(up: Upgrade, node: str, line: str) -> str:
    result = up.lt.wait(up.lab._running_agents.run(node, line, root=True))
    return str(result.stdout)


def commands(events: list[dict[str, Any]], word: str) -> list[list[str]]:
    return [e["argv"] for e in events if e["type"] == "command" and word in e["argv"]]


def test_a_broken_vendor_source_and_a_held_dpkg_lock_do_not_stop_the_upgrade(upgrade_lab,
                                                                              tmp_path):
    up = upgrade_lab(scenario(tmp_path, (
        "  - {kind: apt-source-broken, node: oldversion3}\n"
        "  - {kind: package-lock-held, node: oldversion2, seconds: '150'}\n")))
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    # No refresh read another source than the Kubernetes one.
    updates = [a for a in commands(events, "update") if "apt-get" in a]
    assert updates
    assert all("Dir::Etc::sourceparts=-" in a and "APT::Update::Error-Mode=any" in a
               for a in updates), updates
    # The lock holder was waited out (dpkg's "locked by another process" from apt-mark).
    assert any(e["exit_code"] == 100 and "apt-mark" in e["argv"] for e in events
               if e["type"] == "command" and e["node"] == "oldversion2")
    for node in ("oldversion1", "oldversion2", "oldversion3"):
        assert node_run(up, node, "apt-mark showhold") == "kubeadm\nkubectl\nkubelet\n"
        assert node_run(up, node, "dpkg-query -W -f '${Version} ' kubeadm kubelet kubectl") \
            == "1.29.15-1.1 " * 3


def test_an_unreachable_repository_halts_at_the_refresh_with_the_holds_intact(upgrade_lab,
                                                                              tmp_path):
    up = upgrade_lab(scenario(tmp_path,
                              "  - {kind: package-repo-unreachable, node: oldversion3}\n"))
    # Found by the trial refresh before anything changes: refused, the control plane untouched.
    refused = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "blocking finding node.repo-trial-failed on node/oldversion3" in refused.stderr
    assert not [e for e in up.lt.events() if e["type"] == "command"
                and "kubeadm" in e["argv"] and "apply" in e["argv"]]
    # Told to go on regardless, the run halts at that node's refresh, holds intact.
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY,
                      "--ignore-finding", "node.repo-trial-failed")
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "on node oldversion3 failed: `sudo apt-get update -o Dir::Etc::sourcelist=" in last
    assert "exited with 100: …https://prod-cdn.packages.k8s.io/" in last
    assert "Could not connect to prod-cdn.packages.k8s.io:443" in last
    assert node_run(up, "oldversion3", "apt-mark showhold") == "kubeadm\nkubectl\nkubelet\n"
    # Nothing was released on that node.
    assert not [e for e in up.lt.events() if e["type"] == "command"
                and e["node"] == "oldversion3" and "unhold" in e["argv"]]


def test_check_reports_a_second_kubernetes_source_before_anything_runs(upgrade_lab, tmp_path):
    up = upgrade_lab(scenario(tmp_path, "  - {kind: apt-source-copy, node: oldversion2, "
                                        "minor: '1.29'}\n"))
    check = up.kubehop("check", "--to", "1.29", "-o", "json", "--today", TODAY)
    assert check.returncode == 1, check.stderr
    found = [f for f in json.loads(check.stdout)["findings"] if f["id"] == "node.repo-duplicate"]
    assert found == [{
        "id": "node.repo-duplicate", "severity": "blocking", "subject": "node/oldversion2",
        "message": "node oldversion2 name the Kubernetes repository in more than one file: "
                   "/etc/apt/sources.list.d/kubernetes-1.29.list (v1.29); "
                   "/etc/apt/sources.list.d/kubernetes.list (v1.28); kubehop edits only the "
                   "first, and the others keep their minors installable",
        "fix": "remove the Kubernetes source from every file but "
               "/etc/apt/sources.list.d/kubernetes-1.29.list on node oldversion2"}]


def test_dnf5_and_versionlocked_nodes_upgrade_and_keep_their_locks(upgrade_lab, tmp_path):
    text = (Path(scenarios.__file__).parent / "builtin" / "rpm.yaml").read_text()
    path = tmp_path / "rpm-hazards.yaml"
    path.write_text(text.replace("name: rpm\n", "name: rpm-hazards\n").replace(
        "faults: []\n", "") + "\nfaults:\n  - {kind: dnf5, node: rocky2}\n"
        "  - {kind: versionlock, node: rocky2}\n  - {kind: versionlock, node: rocky3}\n")
    up = upgrade_lab(str(path))
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    installs = {e["node"]: e["argv"] for e in events if e["type"] == "command"
                and "install" in e["argv"] and e["exit_code"] == 0}
    assert "--setopt=disable_excludes=kubernetes" in installs["rocky2"]
    assert "--disableexcludes=kubernetes" in installs["rocky3"]
    for node in ("rocky2", "rocky3"):
        locks = node_run(up, node, "dnf versionlock list")
        assert "kubelet" in locks, (node, locks)
        assert "1.29.15-150500.1.1" in locks, (node, locks)
        assert node_run(up, node, "rpm -q --qf '%{VERSION} ' kubeadm kubelet kubectl") == \
            "1.29.15 " * 3


def test_an_expired_repository_key_is_reported_and_the_plan_fetches_the_new_one(upgrade_lab,
                                                                                tmp_path):
    up = upgrade_lab(scenario(tmp_path, (
        "  - {kind: repo-key, node: oldversion3, state: expired}\n"
        "  - {kind: repo-key, node: oldversion2, state: missing}\n")))
    check = up.kubehop("check", "--to", "1.29", "-o", "json", "--today", TODAY)
    found = {f["id"]: f for f in json.loads(check.stdout)["findings"]
             if f["id"].startswith("node.repo-key")}
    keyring = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
    expired = found["node.repo-key-expired"]
    assert expired["subject"] == "node/oldversion3"
    assert expired["message"].startswith(f"the repository key in {keyring} on node oldversion3 "
                                         f"expired on 20")
    assert expired["fix"].startswith("kubehop plan adds a step that fetches the minor's "
                                     "re-issued Release.key; by hand: curl -fsSL https://")
    assert found["node.repo-key-missing"]["subject"] == "node/oldversion2"
    plan = up.kubehop("plan", "--to", "1.29", "-o", "json", "--today", TODAY)
    steps = {s["id"]: s for s in json.loads(plan.stdout)["steps"]}
    switch = steps["1.29/oldversion3/repo-switch"]["commands"]
    assert switch[:3] == [
        "sudo mkdir -p -m 0755 /etc/apt/keyrings",
        "curl -fsSL -o /tmp/kubehop-Release.key "
        "https://pkgs.k8s.io/core:/stable:/v1.29/deb/Release.key",
        f"sudo gpg --batch --yes --dearmor -o {keyring} /tmp/kubehop-Release.key"]
    assert steps["1.29/oldversion1/repo-switch"]["commands"][0].startswith("printf")
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for node in ("oldversion2", "oldversion3"):
        assert node_run(up, node, "dpkg-query -W -f '${Version}' kubelet") == "1.29.15-1.1"

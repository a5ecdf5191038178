"""`check --to` on the `rpm` lab tries the target minor's repository on every dnf node, as the
SSH login user, before anything changes (issue #14 item 5): nothing to report when it offers
the patch; node.repo-trial-failed when pkgs.k8s.io does not answer one node (and `upgrade`
refuses before the control plane moves); node.repo-missing-patch, with what it offers, for a
patch it does not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubehop.lab import scenarios
from tests.integration.upgrade.conftest import TODAY, Upgrade
from tests.integration.upgrade.test_rpm import node_run

REPO = "/etc/yum.repos.d/kubernetes.repo"


def scenario(tmp_path: Path, faults: str = "") -> str:
    text = (Path(scenarios.__file__).parent / "builtin" / "rpm.yaml").read_text()
    assert "\nfaults:" not in text
    path = tmp_path / "rpm-trial.yaml"
    path.write_text(text.replace("name: rpm\n", "name: rpm-trial\n")
                    + (f"\nfaults:\n{faults}" if faults else ""))
    return str(path)


def trial_findings(up: Upgrade, to: str) -> list[dict[str, Any]]:
    check = up.kubehop("check", "--to", to, "-o", "json", "--today", TODAY)
    assert check.returncode in (0, 1), check.stderr[-3000:]
    return [f for f in json.loads(check.stdout)["findings"]
            if f["id"] in ("node.repo-trial-failed", "node.repo-missing-patch")]


def test_the_trial_finds_the_patch_or_lists_what_the_repository_offers(upgrade_lab, tmp_path):
    up = upgrade_lab(scenario(tmp_path))
    before = node_run(up, "rocky2", f"cat {REPO}")
    assert trial_findings(up, "1.30") == []
    # Every node asked its repository, as the login user, through a run-only dnf repository.
    trials = [e for e in up.lt.events() if e["type"] == "command" and e["argv"][:1] == ["dnf"]
              and "--repo=kubehop-trial" in e["argv"]]
    assert {e["node"] for e in trials} == {"rocky1", "rocky2", "rocky3"}
    (missing,) = trial_findings(up, "v1.30.99")
    assert (missing["id"], missing["severity"]) == ("node.repo-missing-patch", "blocking")
    assert missing["subject"] == "nodes/3"  # grouped: one repository, one answer
    assert "seen from nodes rocky1, rocky2, rocky3" in missing["message"]
    assert "does not offer kubeadm 1.30.99; it offers 1.30.14-150500.1.1, " \
           "1.30.13-150500.1.1" in missing["message"]
    assert node_run(up, "rocky2", f"cat {REPO}") == before  # still the node's 1.28 repository


def test_an_unreachable_repository_on_one_node_blocks_before_anything_changes(upgrade_lab,
                                                                              tmp_path):
    up = upgrade_lab(scenario(tmp_path, "  - {kind: package-repo-unreachable, node: rocky2}\n"))
    (failed,) = trial_findings(up, "1.30")
    assert (failed["id"], failed["subject"]) == ("node.repo-trial-failed", "node/rocky2")
    assert "Curl error (28): Timeout was reached for https://pkgs.k8s.io/core:/stable:/v1.30/" \
           "rpm/repodata/repomd.xml" in failed["message"]
    assert "try: dnf makecache there" in failed["fix"]
    refused = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "blocking finding node.repo-trial-failed on node/rocky2" in refused.stderr
    assert not [e for e in up.lt.events() if e["type"] == "command"
                and ("install" in e["argv"] or "apply" in e["argv"])]

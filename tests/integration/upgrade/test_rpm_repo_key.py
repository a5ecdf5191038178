"""The `rpm` lab with the Kubernetes key imported into rpm on rocky2 expired (kubernetes/release
#3840: dnf keeps the old key and fails "GPG check FAILED"): `check --to 1.30` reports it before
anything changes, and `upgrade --to 1.30 --yes` erases the old key, imports the minor's, and
completes with every invariant intact."""

from __future__ import annotations

import json
from pathlib import Path

from kubehop.lab import scenarios
from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_rpm import node_run
from tests.integration.upgrade.test_upgrade import assert_upgraded

NODE = "rocky2"


def scenario(tmp_path: Path) -> str:
    text = (Path(scenarios.__file__).parent / "builtin" / "rpm.yaml").read_text()
    assert "\nfaults:" not in text
    path = tmp_path / "rpm-key.yaml"
    path.write_text(text.replace("name: rpm\n", "name: rpm-key\n")
                    + "\nfaults:\n  - {kind: repo-key, node: rocky2, state: expired}\n")
    return str(path)


def test_an_expired_rpm_key_is_reported_and_replaced_by_the_upgrade(upgrade_lab, tmp_path):
    up = upgrade_lab(scenario(tmp_path))
    code, old, _ = node_run(up, NODE, "rpm -q gpg-pubkey")
    assert code == 0
    old_key = old.strip()

    check = up.kubehop("check", "--to", "1.30", "-o", "json", "--today", TODAY)
    found = [f for f in json.loads(check.stdout)["findings"]
             if f["id"].startswith("node.repo-key")]
    assert [(f["id"], f["subject"]) for f in found] == [("node.repo-key-expired",
                                                         "node/rocky2")]
    assert f"imported into rpm ({old_key})" in found[0]["message"]
    assert "GPG check FAILED" in found[0]["message"]

    plan = json.loads(up.kubehop("plan", "--to", "1.30", "-o", "json", "--today", TODAY).stdout)
    steps = {s["id"]: s for s in plan["steps"]}
    switch = steps[f"1.30/{NODE}/repo-switch"]["commands"]  # (workers go to 1.30 at once)
    assert switch[:2] == [
        f"sudo sh -c 'rpm -q --quiet {old_key} || exit 0; rpm -e {old_key}'",
        "sudo rpm --import https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml.key"]
    assert steps["1.30/rocky3/repo-switch"]["commands"][0].startswith("printf")

    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_upgraded(up)  # components at the target, invariants, nothing cordoned
    code, out, _ = node_run(up, NODE, "rpm -q --qf '%{VERSION}\\n' kubeadm kubelet kubectl")
    assert (code, out) == (0, "1.30.14\n" * 3)

    after = up.kubehop("check", "-o", "json", "--today", TODAY)
    assert not [f for f in json.loads(after.stdout)["findings"]
                if f["id"].startswith("node.repo-key")]

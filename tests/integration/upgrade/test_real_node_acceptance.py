"""Issue #14's acceptance on one lab: every real-node hazard is reported by node, with a fix,
by `check --to 1.36` before anything changes; the plan fetches the expired key and blocks on the
cgroup v1 node; without that node the upgrade to 1.36 completes, refreshing only the Kubernetes
source."""

from __future__ import annotations

import json

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY, final_versions
from tests.release_pins import latest

NODES = """\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: hazards136
cluster: {kubernetesVersion: v1.35.8}
nodes:
  - name: cp1
    roles: [control-plane]
  - {name: wkey}
  - {name: wvendor}
  - name: wdnf
    os: {family: rhel, image: "Rocky Linux 9.4 (Blue Onyx)"}
"""
FAULTS = """\
faults:
  - {kind: repo-key, node: wkey, state: expired}
  - {kind: apt-source-broken, node: wvendor}
  - {kind: dnf5, node: wdnf}
"""
V1 = "  - {name: wv1}\n"
V1_FAULT = "  - {kind: cgroup-v1, node: wv1}\n"


def by_subject(findings: list[dict], node: str) -> set[str]:
    return {f["id"] for f in findings if f["subject"] in (f"node/{node}",)
            or f"node {node}" in f["message"] or f" {node}," in f["message"]}


def test_every_hazard_is_reported_before_anything_changes(upgrade_lab, tmp_path):
    path = tmp_path / "hazards.yaml"
    path.write_text(NODES + V1 + FAULTS + V1_FAULT)
    up = upgrade_lab(str(path))
    checked = up.kubehop("check", "--to", "1.36", "--today", TODAY, "-o", "json")
    findings = json.loads(checked.stdout)["findings"]
    assert checked.returncode == 1
    assert all(f["fix"] for f in findings)
    assert "node.repo-key-expired" in by_subject(findings, "wkey"), findings
    (vendor,) = [f for f in findings if f["id"] == "node.apt-source-key"]
    assert vendor["subject"] == "node/wvendor"
    assert "https://download.vendor.example/apt" in vendor["message"]
    assert "/etc/apt/keyrings/vendor.gpg expired on " in vendor["message"]
    assert "host.cgroup-v1" in by_subject(findings, "wv1"), findings
    assert "node.dnf5" in by_subject(findings, "wdnf"), findings
    # Nothing on any node changed.
    assert not [e for e in up.lt.events() if e["type"] == "command"
                and any(w in e["argv"] for w in ("install", "tee", "apply", "hold", "unhold"))]
    planned = up.kubehop("plan", "--to", "1.36", "--today", TODAY, "-o", "json")
    assert planned.returncode == 1
    assert "host.cgroup-v1" in planned.stderr


def test_without_the_cgroup_v1_node_the_upgrade_to_136_completes(upgrade_lab, tmp_path):
    path = tmp_path / "hazards.yaml"
    path.write_text(NODES + FAULTS)
    up = upgrade_lab(str(path))
    planned = up.kubehop("plan", "--to", "1.36", "--today", TODAY, "-o", "json")
    assert planned.returncode == 0, planned.stderr
    switch = next(s for s in json.loads(planned.stdout)["steps"]
                  if s["id"] == "1.36/wkey/repo-switch")
    assert any("Release.key" in c for c in switch["commands"])
    done = up.kubehop("upgrade", "--to", "1.36", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events) == []
    versions = final_versions(events)
    for node in ("cp1", "wkey", "wvendor", "wdnf"):
        assert versions[(node, "kubelet")] == latest("1.36"), node
    updates = [e["argv"] for e in events if e["type"] == "command" and "update" in e["argv"]
               and any(a.endswith("apt-get") for a in e["argv"])]
    assert updates
    assert all("Dir::Etc::sourceparts=-" in a for a in updates), updates

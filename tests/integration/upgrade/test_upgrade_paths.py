"""Upgrade paths operators end up with: workers left three minors behind (KEP-3935) are upgraded
the way the upstream worker page describes, touching each worker only when its kubelet moves."""

from __future__ import annotations

from collections import Counter

import pytest

from kubehop.lab.history import check_history
from kubehop.lab.scenarios import builtin_names
from tests.integration.upgrade.conftest import TODAY, final_versions

# A 1.30 control plane with four 1.27 workers whose kubeadm (1.27) last managed them.
N_MINUS_3 = """\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: nminus3
cluster: {kubernetesVersion: v1.30.14}
nodes:
  - name: cp1
    roles: [control-plane]
    packages: {kubeadm: 1.30.14, kubelet: 1.30.14, kubectl: 1.30.14}
    repo: {minor: "1.30"}
  - name: w
    count: 4
    packages: {kubeadm: 1.27.16, kubelet: 1.27.16, kubectl: 1.27.16}
    repo: {minor: "1.27"}
workloads:
  - {kind: Deployment, namespace: web, name: frontend, replicas: 4,
     requests: {cpu: 100m, memory: 128Mi}, pdb: {maxUnavailable: 1}}
"""


def test_workers_three_minors_behind_go_to_131_drained_twice(upgrade_lab, tmp_path):
    scenario = tmp_path / "nminus3.yaml"
    scenario.write_text(N_MINUS_3)
    up = upgrade_lab(str(scenario))
    checked = up.kubehop("check", "--to", "1.31", "--today", TODAY, "-o", "json")
    assert "skew.kubeadm-node-jump" in checked.stdout, checked.stdout + checked.stderr
    done = up.kubehop("upgrade", "--to", "1.31", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events) == []
    versions = final_versions(events)
    workers = [f"w-{i}" for i in range(1, 5)]
    for node in ["cp1", *workers]:
        assert versions[(node, "kubelet")].startswith("v1.31."), node
    # The skew policy forces two kubelet moves (1.27 → 1.30 before the control plane leaves
    # 1.30, then 1.31): two drains per worker, each after one kubeadm install and one
    # `kubeadm upgrade node`, and no other kubeadm work on the worker.
    restarts = Counter(e["node"] for e in events if e["type"] == "kubelet-restart")
    kubeadm_runs = Counter(e["node"] for e in events if e["type"] == "command"
                           and _unsudo(e["argv"])[:3] == ["kubeadm", "upgrade", "node"])
    kubeadm_installs = Counter(e["node"] for e in events if e["type"] == "component"
                               and e["component"] == "kubeadm" and e["t"] > 0.0
                               and e["version"] != "v1.27.16")
    for node in workers:
        assert restarts[node] == 2, (node, restarts)
        assert kubeadm_runs[node] == 2, (node, kubeadm_runs)
        assert kubeadm_installs[node] == 2, (node, kubeadm_installs)
    # Each `kubeadm upgrade node` of a worker comes before its drain (the worker page's order).
    for node in workers:
        runs = [e["seq"] for e in events if e["type"] == "command" and e["node"] == node
                and _unsudo(e["argv"])[:3] == ["kubeadm", "upgrade", "node"]]
        cordons, schedulable = [], True
        for e in events:
            if e["type"] == "node" and e["node"] == node:
                if schedulable and not e["schedulable"]:
                    cordons.append(e["seq"])
                schedulable = e["schedulable"]
        assert len(cordons) == 2
        assert runs[0] < cordons[0] < runs[1] < cordons[1]


def _unsudo(argv: list[str]) -> list[str]:
    return argv[2:] if argv[:2] == ["sudo", "-n"] else argv


# HA at 1.29.15 whose second control plane's apiserver manifest was edited by hand to v1.30.2.
HA_HAND_EDIT = """\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: haedit
cluster: {kubernetesVersion: v1.29.15, loadBalancer: true}
nodes:
  - name: m1
    roles: [control-plane]
    packages: {kubeadm: 1.29.15, kubelet: 1.29.15, kubectl: 1.29.15}
    repo: {minor: "1.29"}
  - name: m2
    roles: [control-plane]
    packages: {kubeadm: 1.29.15, kubelet: 1.29.15, kubectl: 1.29.15}
    repo: {minor: "1.29"}
    controlPlaneImages: {kube-apiserver: v1.30.2}
  - name: m3
    roles: [control-plane]
    packages: {kubeadm: 1.29.15, kubelet: 1.29.15, kubectl: 1.29.15}
    repo: {minor: "1.29"}
  - name: w
    count: 2
    packages: {kubeadm: 1.29.15, kubelet: 1.29.15, kubectl: 1.29.15}
    repo: {minor: "1.29"}
workloads:
  - {kind: Deployment, namespace: web, name: frontend, replicas: 2, pdb: {maxUnavailable: 1}}
"""


def test_a_hand_edited_apiserver_on_a_secondary_control_plane_is_restored_then_upgraded(
        upgrade_lab, tmp_path):
    import json

    scenario = tmp_path / "haedit.yaml"
    scenario.write_text(HA_HAND_EDIT)
    up = upgrade_lab(str(scenario))
    checked = up.kubehop("check", "--to", "1.30", "--today", TODAY, "-o", "json")
    findings = json.loads(checked.stdout)["findings"]
    ids = {f["id"] for f in findings}
    assert "drift.static-pod-image" in ids
    # No fix accepts the hand edit ("upgrade kubeadm on node m2 to 1.30"); the skew finding
    # it causes points at the drift fix.
    assert not [f for f in findings if "upgrade kubeadm on node m2" in f["fix"]], findings
    caused = [f for f in findings if f.get("cause") == "drift.static-pod-image"]
    assert caused
    assert all("restore the hand-edited" in f["fix"] for f in caused)
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events) == []
    versions = final_versions(events)
    for node in ("m1", "m2", "m3"):
        assert versions[(node, "kube-apiserver")] == "v1.30.14", node
    # m2's apiserver went back to kubeadm's v1.29.15 before kubeadm ran anywhere.
    m2 = [e["version"] for e in events if e["type"] == "component" and e["node"] == "m2"
          and e["component"] == "kube-apiserver" and e["version"]]
    assert m2[0] == "v1.30.2"
    assert "v1.29.15" in m2
    assert m2.index("v1.29.15") < m2.index("v1.30.14")


# Two nodes; the only database's PodDisruptionBudget allows no disruption (2 of 2 must stay).
TIGHT_DATABASE = """\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: tightdb
cluster: {kubernetesVersion: v1.29.15}
nodes:
  - name: cp1
    roles: [control-plane]
  - name: w1
workloads:
  - {kind: StatefulSet, namespace: db, name: pg, replicas: 2, pdb: {minAvailable: 2}}
"""


def test_a_budget_that_allows_no_disruption_refuses_the_upgrade_naming_it(upgrade_lab,
                                                                         tmp_path):
    scenario = tmp_path / "tightdb.yaml"
    scenario.write_text(TIGHT_DATABASE)
    up = upgrade_lab(str(scenario))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "db/pg" in done.stderr
    assert not [e for e in up.lt.events() if e["type"] == "node" and not e["schedulable"]]


@pytest.mark.parametrize("name", builtin_names())  # one lab each: side by side under xdist
def test_check_to_latest_is_never_a_usage_error_on_a_built_in_scenario(upgrade_lab, name):
    up = upgrade_lab("large:nodes=6,pods=2" if name == "large" else name)
    checked = up.kubehop("check", "--to", "latest", "--today", TODAY, "-o", "json")
    assert checked.returncode in (0, 1), (name, checked.stderr)
    assert "findings" in checked.stdout

"""`kubehop check` against the lab: the hand-edited apiserver manifest, a clean oldversion, node
facts over the lab's SSH endpoints (kubehop's SSH transport), removed APIs on the HA lab."""

from __future__ import annotations

import json

import pytest

from kubehop.cli import app

TODAY = "2026-11-25"
EDIT = ("sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.29.15/' "
        "/etc/kubernetes/manifests/kube-apiserver.yaml")


def check(capsys, lab, *args: str) -> tuple[int, list[dict], str]:
    argv = ["--kubeconfig", str(lab.kubeconfig_path)]
    if lab.ssh:
        argv += ["--ssh-inventory", str(lab.inventory_path)]
    with pytest.raises(SystemExit) as exc:
        app.main([*argv, "check", "--today", TODAY, "-o", "json", *args])
    out, err = capsys.readouterr()
    return exc.value.code, json.loads(out)["findings"] if out else [], err


def by_id(findings: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in findings:
        out.setdefault(f["id"], []).append(f)
    return out


def test_clean_oldversion_has_nothing_blocking_for_129_and_warns_of_128s_end_of_life(
        lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion", ssh=True)
    code, findings, _ = check(capsys, lt.lab, "--to", "1.29")
    assert code == 0, findings
    assert [f for f in findings if f["severity"] == "blocking"] == []
    found = by_id(findings)
    (eol,) = found["support.end-of-life"]
    assert eol["severity"] == "warning"
    assert "1.28" in eol["message"]
    # Node facts came over SSH: held packages, the v1.28 repository, no package finding.
    assert not [i for i in found if i.startswith("packages.")]
    # What a drain meets: the bare emptyDir pod; CloudNativePG switches over (no PDB finding).
    assert found["drain.pod-without-controller"][0]["subject"] == "pod/default/scratch"
    assert not [i for i in found if i.startswith("drain.pdb")]
    assert "capacity.insufficient" not in found


def test_the_hand_edited_apiserver_manifest_is_blocking_drift(lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion")
    lt.node_run("oldversion1", EDIT)
    lt.wait(lt.lab.agents.idle())
    code, findings, _ = check(capsys, lt.lab, "--to", "1.29")
    assert code == 1
    (drift,) = by_id(findings)["drift.static-pod-image"]
    assert drift["severity"] == "blocking"
    assert drift["subject"] == "node/oldversion1"
    assert drift["fix"] == ("restore the image to v1.28.9 (kubehop plan and upgrade do it "
                            "first, one node at a time), then upgrade with kubeadm")
    assert "v1.29.15" in drift["message"]
    assert by_id(findings)["support.end-of-life"][0]["severity"] == "warning"


def test_unheld_packages_and_the_legacy_repository_over_ssh(lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion", ssh=True)
    lt.node_run("oldversion2", "apt-mark unhold kubelet")
    lt.node_run("oldversion3", "sh -c 'echo deb https://apt.kubernetes.io/ kubernetes-xenial "
                               "main > /etc/apt/sources.list.d/kubernetes.list'")
    code, findings, _ = check(capsys, lt.lab)
    assert code == 1
    found = by_id(findings)
    (unheld,) = found["packages.not-held"]
    assert unheld["subject"] == "node/oldversion2"
    assert unheld["fix"].startswith(
        "apt-mark hold kubelet")
    (legacy,) = found["packages.legacy-repository"]
    assert legacy["severity"] == "blocking"
    assert legacy["subject"] == "node/oldversion3"


def test_rpm_nodes_are_pinned_by_their_repositorys_exclude_line(lab_factory, cli_env, capsys):
    lt = lab_factory("rpm", ssh=True)
    code, findings, _ = check(capsys, lt.lab, "--to", "1.29")
    assert code == 0, findings
    assert not [f for f in findings if f["id"].startswith("packages.")]


def test_ha_removed_apis_in_manifests_and_live_clients(lab_factory, cli_env, capsys):
    lt = lab_factory("ha")
    lt.lab.servers["cp-2"].api.deprecated_apis.append({
        "group": "flowcontrol.apiserver.k8s.io", "version": "v1beta2", "resource": "flowschemas",
        "removed_release": "1.29"})
    code, findings, _ = check(capsys, lt.lab, "--to", "1.29")
    assert code == 1
    found = by_id(findings)
    (live,) = found["apis.deprecated-api-in-use"]
    assert live["severity"] == "blocking"
    assert "flowschemas" in live["message"]
    (helm,) = found["apis.removed-in-target"]
    assert helm["subject"] == "flowschema/monitoring-scrapes"
    assert "monitoring/flow-tuning" in helm["message"]
    (applied,) = found["apis.already-removed"]
    assert applied["subject"] == "deployment/web/api"
    assert "apps/v1beta2" in applied["message"]
    code, findings, _ = check(capsys, lt.lab)  # without a target: no API findings
    assert not [f for f in findings if f["id"].startswith("apis.")]


def test_an_apiserver_that_does_not_answer_is_named(lab_factory, cli_env, capsys):
    lt = lab_factory("ha")
    lt.wait(lt.lab.servers["cp-3"].stop())
    _, findings, _ = check(capsys, lt.lab)
    # Its address refuses, its mirror pod still reports Ready: read from there, and said so.
    (down,) = by_id(findings)["skew.apiserver-read-from-mirror-pod"]
    assert down["severity"] == "info"
    assert "cp-3" in down["message"]
    assert "did not answer from here" in down["message"]

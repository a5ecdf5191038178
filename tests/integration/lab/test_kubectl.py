"""Real kubectl (1.27, 1.30, 1.33, 1.37) against the lab: what the upgrade guide's commands show."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from tests.integration.lab.conftest import Kubectl, LabThread, table_rows

pytestmark = pytest.mark.kubectl

NODES = {
    "oldversion1": {"ROLES": "control-plane", "INTERNAL-IP": "127.77.0.10"},
    "oldversion2": {"ROLES": "<none>", "INTERNAL-IP": "127.77.0.11"},
    "oldversion3": {"ROLES": "<none>", "INTERNAL-IP": "127.77.0.12"},
}


def test_version_shows_the_server_version(kubectl: Kubectl) -> None:
    out = kubectl.run("version", "-o", "json")
    doc = json.loads(out)
    assert doc["serverVersion"]["gitVersion"] == "v1.28.9"
    assert doc["serverVersion"]["minor"] == "28"
    plain = kubectl.run("version", check=False)
    assert "v1.28.9" in plain
    assert "error" not in plain.lower()


def test_get_nodes_wide(kubectl: Kubectl) -> None:
    rows = table_rows(kubectl.run("get", "nodes", "-o", "wide"))
    assert [r["NAME"] for r in rows] == sorted(NODES)
    for r in rows:
        want = NODES[r["NAME"]]
        assert r["STATUS"] == "Ready"
        assert r["ROLES"] == want["ROLES"]
        assert r["VERSION"] == "v1.28.9"
        assert r["INTERNAL-IP"] == want["INTERNAL-IP"]
        assert r["EXTERNAL-IP"] == "<none>"
        assert r["OS-IMAGE"] == "Ubuntu 22.04.4 LTS"
        assert r["KERNEL-VERSION"] == "5.15.0-105-generic"
        assert r["CONTAINER-RUNTIME"] == "containerd://1.7.13"
        assert r["AGE"] == "10d"


def test_get_pods_all_namespaces_wide(kubectl: Kubectl) -> None:
    rows = table_rows(kubectl.run("get", "pods", "-A", "-o", "wide"))
    assert list(rows[0]) == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP",
                             "NODE", "NOMINATED NODE", "READINESS GATES"]
    by_name = {(r["NAMESPACE"], r["NAME"]): r for r in rows}
    api = by_name[("kube-system", "kube-apiserver-oldversion1")]
    assert api["READY"] == "1/1"
    assert api["STATUS"] == "Running"
    assert api["RESTARTS"] == "0"
    assert api["IP"] == "127.77.0.10"
    assert api["NODE"] == "oldversion1"
    assert api["NOMINATED NODE"] == "<none>"
    assert {r["NAMESPACE"] for r in rows} >= {"kube-system", "web", "db", "monitoring", "default"}
    assert by_name[("default", "scratch")]["NODE"] == "oldversion3"


def test_kube_system_images_through_jq(kubectl: Kubectl) -> None:
    out = kubectl.run("get", "pods", "-n", "kube-system", "-o", "json")
    doc = json.loads(out)
    assert doc["kind"] == "List"
    images = subprocess.run(["jq", "-r", ".items[].spec.containers[0].image"], input=out,
                            capture_output=True, text=True, check=True).stdout.split()
    assert "registry.k8s.io/kube-apiserver:v1.28.9" in images
    assert "registry.k8s.io/etcd:3.5.12-0" in images
    assert images.count("registry.k8s.io/kube-proxy:v1.28.9") == 3


def test_get_pdb(kubectl: Kubectl) -> None:
    rows = table_rows(kubectl.run("get", "pdb", "-A"))
    assert list(rows[0]) == ["NAMESPACE", "NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                             "ALLOWED DISRUPTIONS", "AGE"]
    by_name = {r["NAME"]: r for r in rows}
    assert by_name["frontend"]["MAX UNAVAILABLE"] == "1"
    assert by_name["frontend"]["MIN AVAILABLE"] == "N/A"
    assert by_name["frontend"]["ALLOWED DISRUPTIONS"] == "1"
    assert by_name["pg"]["MIN AVAILABLE"] == "1"


def test_cordon_and_uncordon(kubectl: Kubectl, lab: LabThread) -> None:
    assert "node/oldversion2 cordoned" in kubectl.run("cordon", "oldversion2")
    try:
        rows = {r["NAME"]: r for r in table_rows(kubectl.run("get", "nodes"))}
        assert rows["oldversion2"]["STATUS"] == "Ready,SchedulingDisabled"
        assert rows["oldversion3"]["STATUS"] == "Ready"
        node = lab.call(lambda: lab.server.store.get("nodes", "", "oldversion2"))
        assert node["spec"]["unschedulable"] is True
        # cordoning again changes nothing (kubectl checks first)
        assert "already cordoned" in kubectl.run("cordon", "oldversion2")
    finally:
        assert "node/oldversion2 uncordoned" in kubectl.run("uncordon", "oldversion2")
    rows = {r["NAME"]: r for r in table_rows(kubectl.run("get", "nodes"))}
    assert rows["oldversion2"]["STATUS"] == "Ready"
    node = lab.call(lambda: lab.server.store.get("nodes", "", "oldversion2"))
    assert "unschedulable" not in node["spec"]


def test_not_found_is_reported_like_a_real_server(kubectl: Kubectl) -> None:
    out = kubectl.run("get", "pod", "nope", "-n", "web", check=False)
    assert 'Error from server (NotFound): pods "nope" not found' in out


def test_the_token_is_never_logged(lab: LabThread, kubectl: Kubectl,
                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        kubectl.run("get", "nodes")
        kubectl.run("get", "pod", "nope", check=False)
    assert "secret-token-never-logged" not in caplog.text

"""`kubehop versions -o json` agrees with what real kubectl 1.30 reports for the same lab:
node names, roles, kubelet versions, OS facts, readiness, and the kube-system images per node.
Every built-in scenario (large at a small size), and the HA lab with one apiserver hand-edited."""

from __future__ import annotations

import json

import pytest

from kubehop.cli import app
from kubehop.lab.scenarios import builtin_names
from tests.integration.observe.conftest import kubectl_json

ROLE = "node-role.kubernetes.io/"
SCENARIOS = [("large:nodes=12,pods=4" if n == "large" else n) for n in builtin_names()]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def kubectl_facts(lab, home) -> dict:
    """What the upstream guide's kubectl pipeline shows, per node."""
    nodes = kubectl_json(lab, home, "get", "nodes")["items"]
    pods = kubectl_json(lab, home, "get", "pods", "-n", "kube-system")["items"]
    facts = {}
    for n in nodes:
        info = n["status"]["nodeInfo"]
        ready = next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
        facts[n["metadata"]["name"]] = {
            "roles": sorted(k[len(ROLE):] for k in n["metadata"]["labels"] if k.startswith(ROLE)),
            "kubelet": info["kubeletVersion"], "kernel": info["kernelVersion"],
            "osImage": info["osImage"], "containerRuntime": info["containerRuntimeVersion"],
            "ready": ready == "True", "schedulable": not n["spec"].get("unschedulable", False),
            "controlPlane": {}, "kubeProxy": None,
        }
    for p in pods:
        labels = p["metadata"].get("labels", {})
        node = p["spec"].get("nodeName")
        image = p["spec"]["containers"][0]["image"]
        if labels.get("tier") == "control-plane":
            facts[node]["controlPlane"][labels["component"]] = tag(image)
        if labels.get("k8s-app") == "kube-proxy":
            facts[node]["kubeProxy"] = tag(image)
    return facts


def kubehop_facts(doc: dict) -> dict:
    return {n["name"]: {
        "roles": sorted(n["roles"]), "kubelet": n["kubelet"], "kernel": n["kernel"],
        "osImage": n["osImage"], "containerRuntime": n["containerRuntime"],
        "ready": n["ready"], "schedulable": n["schedulable"],
        "controlPlane": {k: v for k, v in n["controlPlane"].items() if v is not None},
        "kubeProxy": n["kubeProxy"],
    } for n in doc["nodes"]}


@pytest.mark.kubectl
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_versions_json_agrees_with_kubectl(scenario, lab_factory, cli_env, capsys, tmp_path):
    lt = lab_factory(scenario)
    code, out, err = run_cli(capsys, "--kubeconfig", str(lt.lab.kubeconfig_path),
                             "versions", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"apiservers", "nodes", "addons", "kubeadm", "client"}
    assert kubehop_facts(doc) == kubectl_facts(lt.lab, tmp_path)
    # Each control-plane node's own apiserver, asked directly, by its real endpoint.
    endpoints = {node: url.split("//", 1)[1] for node, url in lt.lab.endpoints.items()}
    assert {a["node"]: a["endpoint"] for a in doc["apiservers"]} == endpoints
    assert all(a["version"] == "v1.28.9" for a in doc["apiservers"])
    kube_system = kubectl_json(lt.lab, tmp_path, "get", "deployments,daemonsets",
                               "-n", "kube-system")["items"]
    images = {o["metadata"]["name"]: tag(o["spec"]["template"]["spec"]["containers"][0]["image"])
              for o in kube_system}
    assert doc["addons"] == {"coredns": images["coredns"], "kube-proxy": images["kube-proxy"],
                             "cni": [{"name": "calico", "version": images["calico-node"]}]}
    assert doc["kubeadm"] == {"kubernetesVersion": "v1.28.9"}
    assert doc["client"]["kubectl"].startswith("v1.30.")


@pytest.mark.kubectl
def test_ha_apiservers_that_disagree_are_each_reported_with_a_note(lab_factory, cli_env, capsys,
                                                                   tmp_path):
    lt = lab_factory("ha")
    lt.node_run("cp-2", "sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.29.15/' "
                        "/etc/kubernetes/manifests/kube-apiserver.yaml")
    lt.wait(lt.lab.agents.idle())
    code, out, err = run_cli(capsys, "--kubeconfig", str(lt.lab.kubeconfig_path),
                             "versions", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert {a["node"]: a["version"] for a in doc["apiservers"]} == {
        "cp-1": "v1.28.9", "cp-2": "v1.29.15", "cp-3": "v1.28.9"}
    assert "load balancer" in err
    assert "kubectl version" in err
    cp2 = next(n for n in doc["nodes"] if n["name"] == "cp-2")
    assert cp2["controlPlane"]["kube-apiserver"] == "v1.29.15"
    assert kubehop_facts(doc) == kubectl_facts(lt.lab, tmp_path)

    code, out, _ = run_cli(capsys, "--kubeconfig", str(lt.lab.kubeconfig_path), "versions")
    assert code == 0
    assert "Note: the apiservers run different versions (v1.28.9, v1.29.15)" in out
    assert "cp-2" in out
    assert "v1.29.15" in out

"""`kubehop.shell.observe.snapshot`: the live cluster as a scenario — what is kept, what is never
copied, what is noted, sampling, keyed anonymization; and the twin-proof fingerprint."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json

import msgspec
import pytest

from kubehop.lab.scenarios.validate import parse_scenario
from kubehop.model.cluster import (
    ApiServerInfo,
    ClusterState,
    NodeHost,
    NodePackages,
    NodeState,
    OsFamily,
    PdbInfo,
    PodInfo,
    Resources,
)
from kubehop.model.cluster_codec import state_fingerprint
from kubehop.model.errors import UsageError
from kubehop.model.versions import parse_kube_version, parse_minor_version
from kubehop.shell.observe.snapshot import ClusterFacts, Obj, _helm, build_snapshot, names_document

V = parse_kube_version


def _obj(doc: dict) -> Obj:
    return msgspec.json.decode(json.dumps(doc).encode(), type=Obj)


def _pod(name: str, node: str, owner: tuple[str, str] | None = None, **kw) -> PodInfo:
    kind, owner_name = owner or (None, None)
    return PodInfo("shop", name, node, owner_kind=kind, owner_name=owner_name,
                   requests=Resources(250, 256 * 2**20), labels=(("app", "cart"),), **kw)


def facts(pods: tuple[PodInfo, ...] = (), pdbs: tuple[PdbInfo, ...] = (),
          packages: NodePackages | None = None) -> ClusterFacts:
    cp = NodeState("cp1", roles=("control-plane",), kubelet=V("v1.28.9"),
                   os_image="Ubuntu 22.04.4 LTS", kernel="5.15.0-105-generic",
                   control_plane_images=(("kube-apiserver", "registry.k8s.io/kube-apiserver:"
                                          "v1.28.9"), ("etcd", "registry.k8s.io/etcd:3.5.12-0")),
                   allocatable=Resources(3900, 7 * 2**30, 110))
    worker = NodeState("w1", kubelet=V("v1.28.9"), os_image="Rocky Linux 9.3 (Blue Onyx)",
                       kernel="5.14.0", labels=(("kubernetes.io/hostname", "w1"),
                                                ("pool", "blue")),
                       allocatable=Resources(8000, 16 * 2**30, 110), packages=packages)
    state = ClusterState(nodes=(cp, worker), kubeadm_kubernetes_version=V("v1.28.9"),
                         pods=pods, pdbs=pdbs, workloads_observed=True,
                         nodes_observed=packages is not None)
    objects = {
        "replicasets": [_obj({"metadata": {"name": "cart-5d", "namespace": "shop",
                                           "ownerReferences": [{"kind": "Deployment",
                                                                "name": "cart",
                                                                "controller": True}]}})],
        "deployments": [_obj({"metadata": {"name": "cart", "namespace": "shop"}, "spec": {
            "template": {"metadata": {"labels": {"app": "cart"}}, "spec": {
                "nodeSelector": {"pool": "blue"},
                "containers": [{"image": "registry.example/cart:1",
                                "env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}]}}}})],
        "pdbs": [_obj({"metadata": {"name": "cart", "namespace": "shop"},
                       "spec": {"maxUnavailable": "50%"}})],
        "nodes": [_obj({"metadata": {"name": "w1"}, "spec": {"taints": [
            {"key": "dedicated", "value": "blue", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}})],
    }
    return ClusterFacts(state, objects)


CART = tuple(_pod(f"cart-5d-{i}", "w1", ("ReplicaSet", "cart-5d")) for i in range(3))
CART_PDB = PdbInfo("shop", "cart", pods=tuple(f"shop/{p.name}" for p in CART), expected=3)


def test_a_deployment_keeps_its_placement_requests_selector_and_pdb_and_no_env() -> None:
    snap = build_snapshot(facts(CART, (CART_PDB,)))
    (w,) = snap.document["workloads"]
    assert w == {"kind": "Deployment", "namespace": "shop", "name": "cart", "replicas": 3,
                 "image": "registry.example/cart:1",
                 "requests": {"cpu": "250m", "memory": "256Mi"}, "emptyDir": False,
                 "placement": ["w1", "w1", "w1"], "nodeSelector": {"pool": "blue"},
                 "pdb": {"maxUnavailable": "50%"}}
    assert "hunter2" not in json.dumps(snap.document)
    parse_scenario(snap.document, "snapshot")  # a valid scenario


def test_nodes_keep_scheduling_labels_taints_allocatable_and_os_family() -> None:
    doc = build_snapshot(facts()).document
    cp, w1 = doc["nodes"]
    assert cp["capacity"] == {"cpu": "3900m", "memory": "7Gi", "pods": 110}
    assert "controlPlaneImages" not in cp  # as kubeadm's version says: no drift
    assert w1["labels"] == {"pool": "blue"}  # the kubelet's own labels are the lab's to add
    assert w1["taints"] == [{"key": "dedicated", "value": "blue", "effect": "NoSchedule"}]
    assert w1["os"]["family"] == "rhel"
    assert doc["cluster"]["kubernetesVersion"] == "v1.28.9"


def test_what_cannot_be_reproduced_is_noted_not_dropped_silently() -> None:
    job = _pod("report-x", "w1", ("Job", "report"))
    pending = _pod("cart-5d-9", None, ("ReplicaSet", "cart-5d"))
    across = PdbInfo("shop", "everything", pods=("shop/cart-5d-0", "shop/lonely"))
    lonely = _pod("lonely", "w1")
    snap = build_snapshot(facts((*CART, job, pending, lonely), (across,)))
    assert "1 pod owned by a Job not reproduced" in snap.notes
    assert "1 pod not scheduled not reproduced" in snap.notes
    assert ("PDB shop/everything not reproduced (covers pods of several workloads)"
            in snap.notes)
    assert "no SSH inventory: packages, repositories and holds are kubeadm's defaults for " \
           "each node's kubelet version" in snap.notes


def test_sampling_keeps_at_most_n_pods_per_node_and_says_so() -> None:
    snap = build_snapshot(facts(CART), max_pods_per_node=2)
    (w,) = snap.document["workloads"]
    assert w["placement"] == ["w1", "w1"]
    assert w["replicas"] == 2
    assert "sampled: 1 pods left out (--max-pods-per-node 2)" in snap.notes


def test_host_hazards_check_reads_become_lab_faults() -> None:
    packages = NodePackages(OsFamily.RHEL, kubeadm="1.28.9-150500.1.1",
                            kubelet="1.28.9-150500.1.1", kubectl="1.28.9-150500.1.1",
                            repo_minor=parse_minor_version("1.28"), dnf5=True,
                            held=("kubeadm", "kubelet", "kubectl"), locked=("kubelet",),
                            host=NodeHost(extra_args=("--cgroup-driver=cgroupfs",),
                                          cgroup_fs="tmpfs"))
    doc = build_snapshot(facts(packages=packages)).document
    assert doc["faults"] == [
        {"kind": "kubelet-extra-args", "node": "w1", "args": "--cgroup-driver=cgroupfs"},
        {"kind": "cgroup-v1", "node": "w1"}, {"kind": "dnf5", "node": "w1"},
        {"kind": "versionlock", "node": "w1"}]
    w1 = doc["nodes"][1]
    assert w1["packages"]["kubelet"] == "1.28.9-150500.1.1"
    assert w1["holds"] == []  # RHEL: the exclude= line pins, versionlocks are the fault above
    parse_scenario(doc, "snapshot")


def test_anonymized_names_are_keyed_hashes_with_the_key_only_in_the_mapping() -> None:
    key = b"\x01" * 32
    snap = build_snapshot(facts(CART, (CART_PDB,)), anonymize_key=key)
    text = json.dumps(snap.document)
    for name in ("shop", "cart", "cp1", "w1", "blue", "registry.example"):
        assert name not in text
    again = build_snapshot(facts(CART, (CART_PDB,)), anonymize_key=b"\x02" * 32)
    assert again.document["nodes"][1]["name"] != snap.document["nodes"][1]["name"]
    mapping = names_document(snap, key)
    assert mapping["key"] == key.hex()
    assert mapping["names"]["node"]["w1"] == snap.document["nodes"][1]["name"]
    parse_scenario(snap.document, "anonymized")


def test_a_helm_release_keeps_its_chart_and_object_api_versions_only() -> None:
    release = {"name": "flow", "chart": {"metadata": {"name": "flow-tuning", "version": "0.3.1"}},
               "config": {"adminPassword": "s3cret"},
               "manifest": "---\napiVersion: flowcontrol.apiserver.k8s.io/v1beta2\n"
                           "kind: FlowSchema\nmetadata:\n  name: scrapes\n"}
    data = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode())))
    page = json.dumps({"items": [{"metadata": {"name": "sh.helm.release.v1.flow.v1",
                                               "namespace": "mon", "labels": {"name": "flow"}},
                                  "type": "helm.sh/release.v1",
                                  "data": {"release": data.decode()}}]}).encode()
    (found,) = _helm(page)
    assert found.chart == "flow-tuning-0.3.1"
    assert found.objects == (("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", "scrapes"),)
    assert "s3cret" not in repr(found)


def test_the_fingerprint_does_not_depend_on_apiserver_addresses() -> None:
    """A twin serves the same apiservers elsewhere: its plan must carry the live fingerprint."""
    state = facts().state
    live = dataclasses.replace(state, apiservers=(
        ApiServerInfo("127.77.0.1:6443", "cp1", V("v1.28.9")),))
    twin = dataclasses.replace(state, apiservers=(
        ApiServerInfo("127.0.0.1:40123", "cp1", V("v1.28.9")),))
    newer = dataclasses.replace(state, apiservers=(
        ApiServerInfo("127.77.0.1:6443", "cp1", V("v1.29.15")),))
    assert state_fingerprint(live) == state_fingerprint(twin)
    assert state_fingerprint(live) != state_fingerprint(newer)


@pytest.mark.parametrize(("change", "problem"), [
    ({"placement": ["w1"]}, "names 1 nodes for 3 replicas"),
    ({"placement": ["w1", "w1", "nowhere"]}, "no node named nowhere"),
    ({"tolerations": [{"key": "x", "operator": "Maybe"}]}, "expected Equal or Exists"),
])
def test_scenario_placement_and_tolerations_are_validated(change: dict, problem: str) -> None:
    doc = build_snapshot(facts(CART)).document
    doc["workloads"][0].update(change)
    with pytest.raises(UsageError, match=problem):
        parse_scenario(doc, "bad.yaml")


def test_a_bad_taint_effect_names_its_path() -> None:
    doc = build_snapshot(facts()).document
    doc["nodes"][1]["taints"][0]["effect"] = "NoWay"
    with pytest.raises(UsageError, match=r"nodes\[1\]\.taints\[0\]\.effect: expected one of"):
        parse_scenario(doc, "bad.yaml")


def test_a_not_ready_cordoned_node_stays_so_in_the_twin() -> None:
    f = facts()
    down = dataclasses.replace(f.state.nodes[1], ready=False, schedulable=False)
    f = dataclasses.replace(f, state=dataclasses.replace(f.state,
                                                         nodes=(f.state.nodes[0], down)))
    node = parse_scenario(build_snapshot(f).document, "snapshot").nodes[1]
    assert node.ready is False
    assert node.unschedulable is True

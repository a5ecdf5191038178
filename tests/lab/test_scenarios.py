"""Lab scenarios: built-ins load, validate, convert and populate a store; bad files are one line."""

from __future__ import annotations

import textwrap

import pytest

from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.scenarios import (
    builtin_names,
    builtin_scenarios,
    load_scenario,
    parse_text,
    to_cluster_spec,
)
from kubehop.lab.scenarios.validate import parse_scenario
from kubehop.model.errors import UsageError

CNPG = "clusters.postgresql.cnpg.io"
PDB = "poddisruptionbudgets.policy"


def populated(name: str) -> Store:
    store = Store()
    populate(to_cluster_spec(load_scenario(name)), store)
    return store


def names(store: Store, resource: str, namespace: str | None = None) -> list[str]:
    items = store.iter(resource, namespace) if namespace else store.iter(resource)
    return sorted(o["metadata"]["name"] for o in items)


def kubelets(store: Store) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"]
            for n in store.iter("nodes")}


def owned_pods(store: Store, namespace: str, prefix: str) -> list[dict]:
    return [p for p in store.iter("pods", namespace) if p["metadata"]["name"].startswith(prefix)]


def parse(yaml_text: str, source: str = "s.yaml"):
    return parse_text(textwrap.dedent(yaml_text), source)


# --- built-ins ------------------------------------------------------------------------------


def test_builtins_are_listed_with_descriptions():
    assert builtin_names()[:4] == ["oldversion", "ha", "large", "rpm"]
    for name, description in builtin_scenarios():
        assert description, name


@pytest.mark.parametrize("name", ["oldversion", "ha", "rpm", "large:nodes=50"])
def test_every_builtin_round_trips_and_populates(name):
    sc = load_scenario(name)
    again = parse_scenario(sc.to_dict(), "again")
    assert again.to_dict() == sc.to_dict()
    spec = to_cluster_spec(sc)
    store = Store()
    populate(spec, store)
    assert sorted(kubelets(store)) == sorted(sc.node_names())
    for (_, node), ns in zip(sc.expanded_nodes(), [n for n in spec.nodes for _ in n.names()],
                             strict=True):
        assert ns.packages == node.packages.as_dict()
        assert (ns.repo_minor, ns.holds, ns.os_family) == (node.repo.minor, node.holds,
                                                          node.os.family)


def test_oldversion():
    sc = load_scenario("oldversion")
    assert (sc.name, sc.node_count, sc.cluster.kubernetes_version) == ("oldversion", 3, "v1.28.9")
    node = sc.nodes[0]
    assert node.packages.kubelet == "1.28.9-1.1"
    assert (node.repo.minor, node.repo.legacy, node.holds) == ("1.28", False,
                                                               ("kubeadm", "kubelet", "kubectl"))
    assert sc.timing.to_dict()["kubeletRestart"] == 10
    store = populated("oldversion")
    assert kubelets(store) == {f"oldversion{i}": "v1.28.9" for i in (1, 2, 3)}
    info = next(store.iter("nodes"))["status"]["nodeInfo"]
    assert (info["osImage"], info["containerRuntimeVersion"]) == ("Ubuntu 22.04.4 LTS",
                                                                 "containerd://1.7.13")
    assert len(owned_pods(store, "web", "frontend-")) == 3
    frontend = store.get(PDB, "web", "frontend")
    assert frontend["spec"]["maxUnavailable"] == 1
    assert frontend["status"]["disruptionsAllowed"] == 1
    assert len(owned_pods(store, "monitoring", "node-exporter-")) == 3
    scratch = store.get("pods", "default", "scratch")
    assert scratch["spec"]["nodeName"] == "oldversion3"
    assert any("emptyDir" in v for v in scratch["spec"]["volumes"])
    assert "calico-node" in names(store, "daemonsets.apps", "kube-system")
    assert any(p["spec"]["containers"][0]["image"].endswith("coredns:v1.10.1")
               for p in store.iter("pods", "kube-system"))


def test_oldversion_cnpg_primary_on_oldversion2():
    store = populated("oldversion")
    cluster = store.get(CNPG, "db", "pg")
    assert cluster["spec"]["instances"] == 3
    assert cluster["status"]["currentPrimary"] == "pg-1"
    pods = {p["metadata"]["name"]: p for p in store.iter("pods", "db")}
    assert sorted(pods) == ["pg-1", "pg-2", "pg-3"]
    assert pods["pg-1"]["spec"]["nodeName"] == "oldversion2"
    assert pods["pg-1"]["metadata"]["labels"]["cnpg.io/instanceRole"] == "primary"
    assert {pods[n]["metadata"]["labels"]["role"] for n in ("pg-2", "pg-3")} == {"replica"}
    assert pods["pg-2"]["metadata"]["ownerReferences"][0]["uid"] == cluster["metadata"]["uid"]
    assert any("emptyDir" in v for v in pods["pg-2"]["spec"]["volumes"])
    assert names(store, PDB, "db") == ["pg", "pg-primary"]
    assert store.get(PDB, "db", "pg-primary")["status"]["disruptionsAllowed"] == 0
    assert store.get(PDB, "db", "pg")["status"]["disruptionsAllowed"] == 1


async def test_oldversion_is_at_steady_state_under_the_controllers():
    from kubehop.lab.clock import VirtualClock
    from kubehop.lab.controllers.manager import Controllers
    from kubehop.lab.controllers.runtime import Timing
    from kubehop.lab.history import History

    sc = load_scenario("oldversion")
    store = Store()
    populate(to_cluster_spec(sc), store)
    before = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in store.iter("pods")}
    controllers = Controllers.install(store, VirtualClock(), History(),
                                      Timing(**sc.timing.to_dict()))
    try:
        await controllers.settle(20)
    finally:
        await controllers.stop()
    assert controllers.errors == []
    assert {p["metadata"]["name"]: p["spec"]["nodeName"] for p in store.iter("pods")} == before
    assert store.get(CNPG, "db", "pg")["status"]["currentPrimary"] == "pg-1"


def test_ha_has_three_control_planes_a_load_balancer_and_older_kubelets():
    sc = load_scenario("ha")
    assert sc.cluster.load_balancer
    assert sc.node_count == 9
    spec = to_cluster_spec(sc)
    assert spec.load_balancer
    store = Store()
    populate(spec, store)
    versions = kubelets(store)
    assert sorted(n for n in versions if n.startswith("cp-")) == ["cp-1", "cp-2", "cp-3"]
    assert sorted(versions.values()).count("v1.27.16") == 3
    assert sorted(versions.values()).count("v1.28.9") == 6
    apiservers = [p for p in store.iter("pods", "kube-system")
                  if p["metadata"]["name"].startswith("kube-apiserver-")]
    assert len(apiservers) == 3
    config = store.get("configmaps", "kube-system", "kubeadm-config")["data"]
    assert 'controlPlaneEndpoint: "127.77.0.5:6443"' in config["ClusterConfiguration"]
    legacy = next(n for n in sc.nodes if n.name == "legacy")
    assert (legacy.repo.minor, legacy.packages.kubeadm) == ("1.27", "1.27.16-1.1")


def test_rpm_nodes_are_rocky_with_rpm_versions_and_no_holds():
    sc = load_scenario("rpm")
    for node in sc.nodes:
        assert node.os.family == "rhel"
        assert node.os.image.startswith("Rocky Linux 9")
        assert node.packages.kubelet == "1.28.9-150500.1.1"
        assert node.holds == ()
    store = populated("rpm")
    assert {n["status"]["nodeInfo"]["osImage"] for n in store.iter("nodes")} == {
        "Rocky Linux 9.3 (Blue Onyx)"}
    assert set(kubelets(store).values()) == {"v1.28.9"}


def test_large_defaults_to_1000_nodes():
    sc = load_scenario("large")
    assert sc.node_count == 1000
    assert sum(n.count for n in sc.nodes if n.control_plane) == 3
    assert sc.parameters == {"nodes": 1000, "pods": 30}
    app = sum(w.replicas for w in sc.workloads if w.kind != "DaemonSet")
    assert app == 997 * 30


def test_large_parameters():
    sc = load_scenario("large:nodes=50")
    assert sc.node_count == 50
    assert sc.parameters == {"nodes": 50, "pods": 30}
    store = Store()
    populate(to_cluster_spec(sc), store)
    assert len(kubelets(store)) == 50
    workers = [n for n in kubelets(store) if n.startswith("worker-")]
    app = [p for p in store.iter("pods") if p["metadata"]["namespace"] != "kube-system"
           and not p["metadata"]["name"].startswith("node-exporter-")]
    assert len(app) == len(workers) * 30
    assert load_scenario("large:nodes=10,pods=5").node_count == 10


@pytest.mark.parametrize(("spec", "problem"), [
    ("large:nodes=2", "parameter nodes must be an integer from 4"),
    ("large:nodes=lots", "parameter nodes must be an integer"),
    ("large:racks=3", "unknown parameter 'racks'"),
    ("large:nodes=20000,pods=100", "the lab holds at most 300,000"),
    ("oldversion:nodes=5", "takes no parameters"),
    ("nosuch", "not a built-in scenario"),
])
def test_bad_parameters_and_names(spec, problem):
    with pytest.raises(UsageError, match=problem):
        load_scenario(spec)


# --- defaults and drift -----------------------------------------------------------------------


def test_defaults_come_from_the_cluster_version_and_os_family():
    sc = parse("""
        name: mini
        cluster: {kubernetesVersion: 1.29.4}
        nodes:
          - {name: cp, roles: [control-plane]}
          - {name: r, os: {family: rhel}}
          - {name: w, packages: {kubelet: 1.28.9}}
    """)
    cp, r, w = sc.nodes
    assert sc.cluster.kubernetes_version == "v1.29.4"
    assert (cp.packages.kubeadm, cp.repo.minor, cp.holds) == ("1.29.4-1.1", "1.29",
                                                             ("kubeadm", "kubelet", "kubectl"))
    assert (r.packages.kubeadm, r.holds, r.os.image) == ("1.29.4-150500.1.1", (),
                                                         "Rocky Linux 9.3 (Blue Onyx)")
    assert (w.packages.kubelet, w.packages.kubeadm) == ("1.28.9-1.1", "1.29.4-1.1")


def test_drift_and_faults_load():
    sc = parse("""
        name: drift
        cluster: {kubernetesVersion: v1.28.9}
        nodes:
          - name: cp
            roles: [control-plane]
            controlPlaneImages: {kube-apiserver: v1.29.4}
          - {name: w, packages: {kubelet: 1.29.4-1.1}, unschedulable: true, count: 2}
        faults:
          - {kind: node-never-ready, node: w-2, after: kubelet-restart}
          - {kind: static-pod-never-ready, node: cp, component: etcd}
        timing: {podStart: 0.5, switchover: 1}
    """)
    assert sc.node_names() == ["cp", "w-1", "w-2"]
    assert sc.faults[0].options == {"after": "kubelet-restart"}
    spec = to_cluster_spec(sc)
    assert spec.apiserver_version() == "v1.29.4"
    assert spec.faults[1].options == {"component": "etcd"}
    assert spec.timing["podStart"] == 0.5
    store = Store()
    populate(spec, store)
    assert kubelets(store)["w-1"] == "v1.29.4"  # newer than the control plane: a drift
    assert store.get("nodes", "", "w-1")["spec"]["unschedulable"] is True


def test_node_entries_feed_the_node_agents():
    from kubehop.lab.node.config import NodeSetup

    sc = load_scenario("rpm")
    setup = NodeSetup.from_scenario(sc.nodes[0].to_dict())[0]
    assert (setup.name, setup.os_family, setup.repo_minor, setup.holds) == (
        "rocky1", "rhel", "1.28", ())
    assert setup.package_version("kubelet") == "1.28.9-150500.1.1"


# --- bad files --------------------------------------------------------------------------------

BASE = "name: bad\nnodes:\n  - {name: cp, roles: [control-plane]}\n"


@pytest.mark.parametrize(("text", "where", "problem"), [
    (BASE + "  - {name: w, packages: {kubelet: 1.2x.9-1.1}}\n",
     "s.yaml:4: nodes[1].packages.kubelet", "not a Kubernetes package version: '1.2x.9-1.1'"),
    (BASE + "  - {name: w, packges: {}}\n", "s.yaml:4: nodes[1].packges",
     "unknown field (did you mean packages?)"),
    (BASE + "colour: blue\n", "s.yaml:4: colour", "unknown field"),
    (BASE + "  - {name: w, count: 3}\n  - {name: w-2}\n", "s.yaml:5: nodes[2].name",
     "duplicate node name w-2, already defined by nodes[1]"),
    (BASE + "  - {name: cp}\n", "nodes[1].name", "duplicate node name cp"),
    (BASE + "workloads:\n  - {kind: Pod, name: x, node: nope}\n", "s.yaml:5: workloads[0].node",
     "no node named nope"),
    (BASE + "workloads:\n  - {kind: CNPGCluster, name: pg, primaryNode: c}\n",
     "workloads[0].primaryNode", "no node named c (did you mean cp?)"),
    (BASE + "workloads:\n  - {kind: Job, name: x}\n", "workloads[0].kind",
     "expected one of Deployment"),
    (BASE + "workloads:\n  - {kind: DaemonSet, name: x, replicas: 2}\n",
     "workloads[0].replicas", "unknown field"),
    (BASE + "workloads:\n  - {kind: Deployment, name: x, pdb: {minAvailable: 1, "
     "maxUnavailable: 1}}\n", "workloads[0].pdb", "exactly one of"),
    (BASE + "workloads:\n  - {kind: Pod, name: x, pdb: {maxUnavailable: 1}}\n",
     "workloads[0].pdb.maxUnavailable", "integer minAvailable"),
    (BASE + "workloads:\n  - {kind: Deployment, name: x}\n  - {kind: Pod, name: x}\n",
     "workloads[1].name", "default/x is already used by workloads[0]"),
    (BASE + "faults:\n  - {kind: node-never-ready, node: cp, after: reboot}\n",
     "faults[0].after", "expected one of kubelet-restart"),
    (BASE + "cluster: {kubernetesVersion: v1.28}\n", "cluster.kubernetesVersion",
     "not a version: 'v1.28'"),
    (BASE + "cluster: {cni: {name: calico, version: 3}}\n", "cluster.cni.version",
     "expected a version string"),
    (BASE + "  - {name: w, repo: {minor: 1.30}}\n", "nodes[1].repo.minor", "quoted minor"),
    (BASE + "  - {name: w, controlPlaneImages: {kube-apiserver: v1.29.4}}\n",
     "nodes[1].controlPlaneImages", "only a node with role control-plane"),
    (BASE + "  - {name: w, controlPlaneImages: {kube-proxy: v1.29.4}}\n",
     "nodes[1].controlPlaneImages.kube-proxy", "unknown field"),
    (BASE + "  - {name: W_1}\n", "nodes[1].name", "not a node name"),
    (BASE + "  - {name: w, count: 0}\n", "nodes[1].count", "at least 1"),
    (BASE + "  - {name: w, os: {family: arch}}\n", "nodes[1].os.family", "debian or rhel"),
    (BASE + "  - {name: w, capacity: {memory: lots}}\n", "nodes[1].capacity.memory",
     "not a resource quantity"),
    (BASE + "timing: {podStart: -1}\n", "timing.podStart", "a number >= 0"),
    ("name: bad\nnodes:\n  - {name: w}\n", "s.yaml:2: nodes", "no node has role control-plane"),
    ("name: bad\nname: again\nnodes: []\n", "s.yaml:2: name", "duplicate key"),
    ("nodes:\n  - {name: cp, roles: [control-plane]}\n", "s.yaml: name",
     "required field is missing"),
    ("apiVersion: v2\n" + BASE, "s.yaml:1: apiVersion", "expected kubehop.dev/v1"),
    ("- a\n- b\n", "s.yaml: document", "expected a mapping, got a list"),
    ("name: [unclosed\n", "s.yaml:2", "not valid YAML"),
])
def test_bad_scenarios_are_one_line_naming_file_field_and_problem(text, where, problem):
    with pytest.raises(UsageError) as exc:
        parse_text(text, "s.yaml")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("s.yaml")
    assert where in message
    assert problem in message
    assert exc.value.exit_code == 2


def test_scenario_files_load_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert load_scenario(str(path)).node_names() == ["cp"]
    with pytest.raises(UsageError, match="no such file"):
        load_scenario(str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match="is a directory"):
        load_scenario(str(tmp_path))


@pytest.mark.slow
def test_large_default_populates_1000_nodes_and_30_pods_per_worker():
    store = populated("large")
    nodes = kubelets(store)
    assert len(nodes) == 1000
    per_node: dict[str, int] = {}
    for p in store.iter("pods"):
        if p["metadata"]["namespace"] not in ("kube-system", "monitoring"):
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
    assert sum(per_node.values()) == 997 * 30
    assert max(per_node.values()) - min(per_node.values()) <= 2

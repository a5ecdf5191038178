"""`run_checks`: each area's findings on hand-built cluster states (table-driven where it helps)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from kubehop.core.checks.run import run_checks
from kubehop.core.planner.target import cluster_version
from kubehop.data import load_release_data
from kubehop.model.cluster import (
    Addons,
    ApiServerInfo,
    ClusterState,
    DatabaseInfo,
    DeprecatedApiUse,
    ManifestObject,
    NodePackages,
    NodeState,
    OsFamily,
    PdbInfo,
    PodInfo,
    Resources,
)
from kubehop.model.findings import Severity
from kubehop.model.versions import MinorVersion, parse_kube_version, parse_minor_version
from tests.release_pins import FRESH

DATA = load_release_data()
TODAY = date(2026, 11, 25)
V = parse_kube_version
GI = 2**30


def images(version: str, apiserver: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("etcd", "registry.k8s.io/etcd:3.5.12-0"),
            ("kube-apiserver", f"registry.k8s.io/kube-apiserver:{apiserver or version}"),
            ("kube-controller-manager", f"registry.k8s.io/kube-controller-manager:{version}"),
            ("kube-scheduler", f"registry.k8s.io/kube-scheduler:{version}"))


def packages(version: str = "1.28.9-1.1", *, held: tuple[str, ...] = ("kubeadm", "kubectl",
             "kubelet"), repo: str | None = "1.28", legacy: bool = False,
             family: OsFamily = OsFamily.DEBIAN, kubeadm: str | None = None) -> NodePackages:
    return NodePackages(os_family=family, kubeadm=kubeadm or version, kubelet=version,
                        kubectl=version, repo_minor=parse_minor_version(repo) if repo else None,
                        repo_legacy=legacy, held=held,
                        kubeadm_binary=V((kubeadm or version).split("-")[0]))


def node(name: str, *, cp: bool = False, kubelet: str = "v1.28.9", apiserver: str | None = None,
         pkgs: NodePackages | None = None, cpu: int = 4000, memory: int = 8 * GI,
         **kw: object) -> NodeState:
    return NodeState(name=name, roles=("control-plane",) if cp else (), kubelet=V(kubelet),
                     kube_proxy=V(kubelet), control_plane_images=images(kubelet, apiserver)
                     if cp else (), allocatable=Resources(cpu, memory, 110), packages=pkgs,
                     **kw)  # type: ignore[arg-type]


def cluster(*nodes: NodeState, apiserver: str = "v1.28.9", **kw: object) -> ClusterState:
    nodes = nodes or (node("cp1", cp=True), node("w1"), node("w2"))
    defaults: dict[str, object] = dict(
        apiservers=(ApiServerInfo("127.77.0.10:6443", "cp1", V(apiserver)),), nodes=nodes,
        kubeadm_kubernetes_version=V("v1.28.9"), addons=Addons("v1.10.1", "v1.28.9",
                                                               (("calico", "v3.29.3"),)),
        nodes_observed=True, workloads_observed=True, apis_observed=True)
    defaults.update(kw)
    return ClusterState(**defaults)  # type: ignore[arg-type]


def to(major: int, minor: int):
    """The target as `check --to 1.NN` resolves it: the newest known patch of the minor."""
    return DATA.latest_patch(MinorVersion(major, minor))


def ids(findings, severity: Severity | None = None) -> list[str]:
    return [f.id for f in findings if severity is None or f.severity is severity]


def only(findings, id_: str):
    found = [f for f in findings if f.id == id_]
    assert len(found) == 1, f"{id_}: {[f.id for f in findings]}"
    return found[0]


def pkg_nodes(**kw: object) -> tuple[NodeState, ...]:
    return (node("cp1", cp=True, pkgs=packages(**kw)), node("w1", pkgs=packages(**kw)),
            node("w2", pkgs=packages(**kw)))


# --- support and the target ---------------------------------------------------------------


def test_a_clean_128_cluster_has_nothing_blocking_for_129_and_warns_of_its_end_of_life():
    findings = run_checks(cluster(*pkg_nodes()), DATA, TODAY, to(1, 29))
    assert ids(findings, Severity.BLOCKING) == []
    eol = only(findings, "support.end-of-life")
    assert eol.severity is Severity.WARNING
    assert "1.28" in eol.message
    assert "2024-10-28" in eol.message
    patch = only(findings, "support.patch-behind")
    assert "v1.28.15" in patch.message
    assert "latest PATCH is recommended" in patch.message
    assert only(findings, "data.stale").severity is Severity.WARNING


def test_findings_come_blocking_first_then_warnings_then_info():
    findings = run_checks(cluster(apiserver="v1.30.0"), DATA, TODAY, to(1, 29))
    order = [f.severity for f in findings]
    assert order == sorted(order, key=[Severity.BLOCKING, Severity.WARNING, Severity.INFO].index)


@pytest.mark.parametrize(("target", "expected", "severity"), [
    ("v1.27.16", "support.target-older", Severity.BLOCKING),
    ("v1.28.9", "support.already-at-target", Severity.INFO),
    ("v1.29.99", "support.target-unknown", Severity.WARNING),
    ("1.29", "support.target-end-of-life", Severity.WARNING),
])
def test_the_target_is_judged(target, expected, severity):
    parsed = DATA.latest_patch(parse_minor_version(target)) if target.count(".") == 1 \
        else V(target)
    findings = run_checks(cluster(), DATA, FRESH, parsed)
    assert only(findings, expected).severity is severity


def test_a_supported_target_raises_no_support_finding():
    findings = run_checks(cluster(), DATA, FRESH, to(1, 34))
    assert not [i for i in ids(findings) if i.startswith("support.target")]


def test_fresh_data_is_not_stale():
    assert "data.stale" not in ids(run_checks(cluster(), DATA, FRESH))


# --- skew ----------------------------------------------------------------------------------


def test_skew_findings_come_from_the_skew_engine():
    state = cluster(node("cp1", cp=True), node("w1", kubelet="v1.29.3"))
    assert only(run_checks(state, DATA, FRESH), "skew.kubelet-newer-than-apiserver").severity \
        is Severity.BLOCKING


def test_an_unreachable_apiserver_is_reported_and_left_out_of_the_skew_rules():
    state = cluster(apiservers=(ApiServerInfo("127.77.0.10:6443", "cp1", V("v1.28.9")),
                                ApiServerInfo("127.77.0.11:6443", "cp2", None, "timed out")))
    f = only(run_checks(state, DATA, FRESH), "skew.apiserver-unreachable")
    assert f.subject == "apiserver/127.77.0.11:6443"
    assert "timed out" in f.message


# --- drift ---------------------------------------------------------------------------------


def test_a_hand_edited_apiserver_manifest_is_blocking_drift_with_kubeadms_version_to_restore():
    state = cluster(node("cp1", cp=True, apiserver="v1.29.15"), node("w1"),
                    apiserver="v1.29.15")
    findings = run_checks(state, DATA, TODAY, to(1, 29))
    f = only(findings, "drift.static-pod-image")
    assert f.severity is Severity.BLOCKING
    assert f.subject == "node/cp1"
    assert f.fix.startswith("restore the image to v1.28.9 (kubehop plan and upgrade do it first")
    assert "kube-apiserver v1.29.15 on node cp1" in f.message
    assert "kubeadm-config" in f.message
    assert cluster_version(state) == V("v1.28.9")  # not the hand-set /version


def test_a_control_plane_node_left_behind_is_a_warning():
    state = cluster(node("cp1", cp=True, kubelet="v1.28.9"),
                    kubeadm_kubernetes_version=V("v1.29.15"))
    f = only(run_checks(state, DATA, FRESH), "drift.control-plane-behind")
    assert f.severity is Severity.WARNING
    assert "kubeadm upgrade node" in f.fix


def test_apiservers_at_different_versions_are_drift():
    state = cluster(apiservers=(ApiServerInfo("a:6443", "cp1", V("v1.28.9")),
                                ApiServerInfo("b:6443", "cp2", V("v1.29.15"))))
    f = only(run_checks(state, DATA, FRESH), "drift.apiservers-differ")
    assert "v1.28.9 on cp1" in f.message
    assert "v1.29.15 on cp2" in f.message


@pytest.mark.parametrize(("pkgs", "kubelet", "expected"), [
    (packages("1.29.15-1.1", repo="1.29"), "v1.28.9", "drift.kubelet-not-restarted"),
    (packages(repo="1.29"), "v1.28.9", "drift.repository-minor"),
    (packages("1.27.16-1.1", repo="1.27"), "v1.27.16", "drift.kubeadm-older-than-cluster"),
])
def test_package_drift(pkgs, kubelet, expected):
    state = cluster(node("cp1", cp=True), node("w1", kubelet=kubelet, pkgs=pkgs))
    f = only(run_checks(state, DATA, FRESH), expected)
    assert f.severity is Severity.WARNING
    assert f.subject == "node/w1"


def test_a_new_kubeadm_during_a_minor_upgrade_is_not_repository_drift():
    pkgs = dataclasses.replace(packages(repo="1.29"), kubeadm="1.29.15-1.1",
                               kubeadm_binary=V("v1.29.15"))
    state = cluster(node("cp1", cp=True), node("w1", pkgs=pkgs))
    assert "drift.repository-minor" not in ids(run_checks(state, DATA, FRESH))


# --- packages and install ------------------------------------------------------------------


def test_without_an_inventory_packages_are_not_observed():
    f = only(run_checks(cluster(nodes_observed=False), DATA, FRESH), "packages.not-observed")
    assert f.severity is Severity.INFO
    assert "--ssh-inventory" in f.fix


def test_the_legacy_repository_blocks_and_one_finding_names_every_node():
    f = only(run_checks(cluster(*pkg_nodes(legacy=True, repo=None)), DATA, FRESH),
             "packages.legacy-repository")
    assert f.severity is Severity.BLOCKING
    assert f.subject == "nodes/3"
    assert "nodes cp1, w1, w2" in f.message
    assert "2024-03-04" in f.message
    assert "pkgs.k8s.io" in f.fix


def test_unheld_packages_warn_with_the_hold_command_of_the_package_manager():
    deb = only(run_checks(cluster(*pkg_nodes(held=("kubeadm",))), DATA, FRESH),
               "packages.not-held")
    assert deb.fix.startswith("apt-mark hold kubelet kubectl")
    rpm = only(run_checks(cluster(*pkg_nodes(held=(), family=OsFamily.RHEL)), DATA, FRESH),
               "packages.not-held")
    assert "exclude=" in rpm.fix


def test_a_node_whose_facts_could_not_be_read_is_named():
    state = cluster(*pkg_nodes(), node_errors=(("w2", "HostUnreachable: no route"),))
    assert only(run_checks(state, DATA, FRESH), "packages.unreadable").subject == "node/w2"


@pytest.mark.parametrize(("change", "name"), [
    ({"kubelet": V("v1.28.9-eks-8cb36c9")}, "Amazon EKS"),
    ({"kubelet": V("v1.28.9+k3s1")}, "k3s"),
    ({"kubelet": V("v1.28.9+rke2r1")}, "RKE2"),
    ({"labels": (("cloud.google.com/gke-nodepool", "pool-1"),)}, "Google GKE"),
    ({"labels": (("kubernetes.azure.com/cluster", "x"),)}, "Azure AKS"),
    ({"labels": (("kops.k8s.io/instancegroup", "nodes"),)}, "kOps"),
    ({"provider_id": "kind://docker/kind/kind-control-plane"}, "kind"),
])
def test_other_distributions_are_blocking_and_name_their_tool(change, name):
    state = cluster(node("cp1", cp=True), dataclasses.replace(node("w1"), **change))
    f = only(run_checks(state, DATA, FRESH), "install.not-kubeadm")
    assert f.severity is Severity.BLOCKING
    assert name in f.message
    assert f.fix.startswith("upgrade it with the tool that installed it: ")


def test_a_missing_kubeadm_config_blocks():
    state = cluster(kubeadm_config_missing=True, kubeadm_kubernetes_version=None)
    assert only(run_checks(state, DATA, FRESH), "install.no-kubeadm-config").severity \
        is Severity.BLOCKING


def test_a_kubeadm_cluster_has_no_install_finding():
    assert not [i for i in ids(run_checks(cluster(), DATA, FRESH)) if i.startswith("install.")]


# --- drain ---------------------------------------------------------------------------------


def pod(name: str, node_name: str = "w1", ns: str = "web", owner: str | None = "ReplicaSet",
        owner_name: str = "app", **kw: object) -> PodInfo:
    return PodInfo(ns, name, node_name, owner, owner_name if owner else None, **kw)  # type: ignore[arg-type]


def test_a_pdb_that_never_allows_a_disruption_blocks_and_names_the_nodes():
    pods = (pod("a-1"), pod("a-2", "w2"))
    pdb = PdbInfo("web", "a", ("web/a-1", "web/a-2"), expected=2, desired_healthy=2,
                  current_healthy=2, disruptions_allowed=0)
    f = only(run_checks(cluster(pods=pods, pdbs=(pdb,)), DATA, FRESH), "drain.pdb-never-allows")
    assert f.severity is Severity.BLOCKING
    assert f.subject == "pdb/web/a"
    assert "nodes w1, w2" in f.message


def test_a_pdb_without_room_right_now_is_a_warning():
    pdb = PdbInfo("web", "a", ("web/a-1",), expected=3, desired_healthy=2, current_healthy=2,
                  disruptions_allowed=0)
    assert only(run_checks(cluster(pods=(pod("a-1"),), pdbs=(pdb,)), DATA, FRESH),
                "drain.pdb-no-disruptions-now").severity is Severity.WARNING


def test_cnpg_pdbs_do_not_block_a_cluster_with_replicas_but_a_single_instance_does():
    primary = PdbInfo("db", "pg-primary", ("db/pg-1",), expected=1, desired_healthy=1,
                      current_healthy=1, disruptions_allowed=0, owner="Cluster/pg")
    pods = (pod("pg-1", ns="db", owner="Cluster", owner_name="pg"),)
    three = DatabaseInfo("db", "pg", 3, "pg-1", "w1")
    findings = run_checks(cluster(pods=pods, pdbs=(primary,), databases=(three,)), DATA, FRESH)
    assert not [i for i in ids(findings) if i.startswith("drain.pdb")]
    one = DatabaseInfo("db", "pg", 1, "pg-1", "w1")
    findings = run_checks(cluster(pods=pods, pdbs=(primary,), databases=(one,)), DATA, FRESH)
    f = only(findings, "drain.single-instance-database")
    assert f.severity is Severity.BLOCKING
    assert "node w1" in f.message
    assert "instances: 2" in f.fix
    unguarded = run_checks(cluster(pods=pods, databases=(one,)), DATA, FRESH)
    assert only(unguarded, "drain.single-instance-database").severity is Severity.WARNING


def test_a_pod_under_two_pdbs_cannot_be_evicted():
    pdbs = tuple(PdbInfo("web", n, ("web/a-1",), expected=3, desired_healthy=1,
                         current_healthy=3, disruptions_allowed=2) for n in ("x", "y"))
    f = only(run_checks(cluster(pods=(pod("a-1"),), pdbs=pdbs), DATA, FRESH),
             "drain.pod-multiple-pdbs")
    assert f.severity is Severity.BLOCKING
    assert "web/x, web/y" in f.message


def test_pods_a_drain_refuses_warn_and_daemonset_mirror_and_finished_pods_do_not():
    pods = (pod("bare", owner=None), pod("cache-1", empty_dir=True), pod("cache-2", empty_dir=True),
            pod("ds", owner="DaemonSet", empty_dir=True), pod("mirror", owner="Node", mirror=True),
            pod("done", owner=None, phase="Succeeded"))
    findings = run_checks(cluster(pods=pods), DATA, FRESH)
    assert only(findings, "drain.pod-without-controller").subject == "pod/web/bare"
    local = only(findings, "drain.pod-local-storage")
    assert local.subject == "replicaset/web/app"
    assert "2 pods of ReplicaSet web/app" in local.message


def test_many_bare_pods_are_summarised():
    pods = tuple(pod(f"p{i:02}", owner=None) for i in range(25))
    bare = [f for f in run_checks(cluster(pods=pods), DATA, FRESH)
            if f.id == "drain.pod-without-controller"]
    assert len(bare) == 11
    assert bare[-1].message == "15 more pods have no controller"


# --- capacity ------------------------------------------------------------------------------


def test_a_node_whose_pods_do_not_fit_elsewhere_blocks():
    big = Resources(3000, 2 * GI, 1)
    pods = (pod("a", "w1", requests=big), pod("b", "w2", requests=big))
    found = [f for f in run_checks(cluster(pods=pods), DATA, FRESH)
             if f.id == "capacity.insufficient"]
    assert [f.subject for f in found] == ["node/w1", "node/w2"]
    assert all(f.severity is Severity.BLOCKING for f in found)
    assert "request 3 CPU and 2Gi memory" in found[0].message


def test_pods_that_fit_on_the_other_workers_raise_no_capacity_finding():
    small = Resources(500, GI, 1)
    pods = tuple(pod(f"a{i}", "w1" if i % 2 else "w2", requests=small) for i in range(6))
    findings = run_checks(cluster(pods=pods), DATA, FRESH)
    assert "capacity.insufficient" not in ids(findings)


def test_the_largest_pod_must_fit_on_one_node_not_just_in_the_sum():
    nodes = (node("cp1", cp=True), node("w1"), node("w2", cpu=2000), node("w3", cpu=2000))
    pods = (pod("huge", "w1", requests=Resources(3000, GI, 1)),)
    f = only(run_checks(cluster(*nodes, pods=pods), DATA, FRESH), "capacity.insufficient")
    assert "no node fits its largest pod" in f.message


# --- apis and CNI (with a target) ----------------------------------------------------------


def test_manifests_using_apis_removed_by_the_target():
    manifests = (
        ManifestObject("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", None, "fs",
                       "helm:monitoring/flow"),
        ManifestObject("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", None, "later",
                       "last-applied"),
        ManifestObject("apps/v1beta2", "Deployment", "web", "api", "last-applied"),
        ManifestObject("apps/v1", "Deployment", "web", "fine", "last-applied"),
    )
    findings = run_checks(cluster(manifests=manifests), DATA, FRESH, to(1, 29))
    removed = only(findings, "apis.removed-in-target")
    assert removed.severity is Severity.WARNING
    assert removed.subject == "flowschema/fs"
    assert "helm mapkubeapis" in removed.fix
    assert "1.29" in removed.message
    old = only(findings, "apis.already-removed")
    assert old.severity is Severity.INFO
    assert "apps/v1" in old.fix
    later = run_checks(cluster(manifests=manifests), DATA, FRESH, to(1, 32))
    assert len([f for f in later if f.id == "apis.removed-in-target"]) == 2


def test_clients_calling_an_api_the_target_removes_block():
    use = DeprecatedApiUse("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", "1.29",
                           "127.77.0.10:6443")
    f = only(run_checks(cluster(deprecated_api_uses=(use,)), DATA, FRESH, to(1, 29)),
             "apis.deprecated-api-in-use")
    assert f.severity is Severity.BLOCKING
    assert "flowcontrol.apiserver.k8s.io/v1" in f.fix
    later = dataclasses.replace(use, removed_release="1.32")
    assert "apis.deprecated-api-in-use" not in ids(
        run_checks(cluster(deprecated_api_uses=(later,)), DATA, FRESH, to(1, 29)))


def test_api_checks_need_a_target_and_unreadable_metrics_are_noted():
    state = cluster(metrics_unreadable=("127.77.0.10:6443",))
    assert not [i for i in ids(run_checks(state, DATA, FRESH)) if i.startswith("apis.")]
    assert only(run_checks(state, DATA, FRESH, to(1, 29)),
                "apis.metrics-unreadable").severity is Severity.INFO


@pytest.mark.parametrize(("cni", "target", "expected"), [
    (("calico", "v3.29.3"), "1.30", None),
    (("calico", "v3.29.3"), "1.33", "cni.untested-with-target"),
    (("calico", "v3.27.0"), "1.29", "cni.compatibility-unknown"),
    (("some/thing", "v1"), "1.29", "cni.compatibility-unknown"),
])
def test_cni_support_for_every_minor_on_the_way(cni, target, expected):
    state = cluster(addons=Addons("v1.10.1", "v1.28.9", (cni,)))
    resolved = DATA.latest_patch(parse_minor_version(target))
    found = [f for f in run_checks(state, DATA, FRESH, resolved) if f.id.startswith("cni.")]
    assert [f.id for f in found] == ([expected] if expected else [])
    if expected == "cni.untested-with-target":
        assert "1.33" in found[0].message
        assert "calico 3.30 (v3.30.7) is tested with 1.33" in found[0].fix


def test_no_recognised_cni_is_noted():
    state = cluster(addons=Addons("v1.10.1", "v1.28.9", ()))
    assert only(run_checks(state, DATA, FRESH, to(1, 29)),
                "cni.not-recognised").severity is Severity.INFO

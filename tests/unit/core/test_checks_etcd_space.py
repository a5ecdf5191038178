"""`check`'s `node.disk-etcd-snapshot`: too little free space in etcd's data directory on the
control plane the etcd snapshot step runs on, judged through `run_checks` as the CLI does."""

from __future__ import annotations

from datetime import date

from kubehop.core.checks.host import etcd_snapshot_space
from kubehop.core.checks.run import run_checks
from kubehop.data import load_release_data
from kubehop.model.cluster import (
    ApiServerInfo,
    ClusterState,
    NodeHost,
    NodePackages,
    NodeState,
    OsFamily,
)
from kubehop.model.cluster_codec import state_fingerprint
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import parse_kube_version, parse_minor_version

DATA = load_release_data()
TODAY = date(2026, 11, 25)
V = parse_kube_version
MiB = 1024 * 1024
DB = 100 * MiB  # etcd's database: the snapshot wants 100 + 10 + 16 MiB
ID = "node.disk-etcd-snapshot"
STACKED = (("etcd", "registry.k8s.io/etcd:3.5.15-0"),
           ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.34.3"))


def node(name: str, *, free: int | None = None, db: int | None = None, cp: bool = True,
         images: tuple[tuple[str, str], ...] = STACKED) -> NodeState:
    host = NodeHost(cgroup_fs="cgroup2fs", etcd_free=free, etcd_db=db)
    pkgs = NodePackages(OsFamily.DEBIAN, kubeadm="1.34.3-1.1", kubelet="1.34.3-1.1",
                        kubectl="1.34.3-1.1", repo_minor=parse_minor_version("1.34"),
                        held=("kubeadm", "kubectl", "kubelet"), host=host)
    return NodeState(name=name, roles=("control-plane",) if cp else (), kubelet=V("v1.34.3"),
                     packages=pkgs, control_plane_images=images if cp else ())


def state(*nodes: NodeState) -> ClusterState:
    return ClusterState(apiservers=(ApiServerInfo("127.77.0.1:6443", "cp1", V("v1.34.3")),),
                        nodes=nodes, nodes_observed=True,
                        kubeadm_kubernetes_version=V("v1.34.3"))


def found(s: ClusterState, target: str | None) -> list[Finding]:
    """`check [--to target]`: a minor is its newest patch, as the CLI resolves it."""
    target_version = (V(target) if target and target.startswith("v") else
                      DATA.latest_patch(parse_minor_version(target)) if target else None)
    return [f for f in run_checks(s, DATA, TODAY, target_version) if f.id == ID]


def test_too_little_space_blocks_a_target_naming_the_node_the_numbers_and_the_fix():
    s = state(node("cp1", free=20 * MiB, db=DB), node("w1", cp=False))
    [f] = found(s, "1.35")
    target = DATA.latest_patch(parse_minor_version("1.35"))
    assert f.severity is Severity.BLOCKING
    assert f.subject == "node/cp1"
    assert f.message == (
        f"node cp1 has 20.0 MiB free in /var/lib/etcd, about 126.0 MiB needed for the etcd "
        f"snapshot kubehop saves there before `kubeadm upgrade apply` (etcd's database is "
        f"100.0 MiB): the upgrade to {target} would halt at that step before kubeadm runs")
    assert f.fix.startswith("free at least 106.0 MiB on the file system of /var/lib/etcd on "
                            "cp1 (old snapshots in /var/lib/kubehop/etcd-snapshots, ")


def test_without_a_target_it_is_a_warning_about_the_next_upgrade():
    [f] = found(state(node("cp1", free=20 * MiB, db=DB)), None)
    assert f.severity is Severity.WARNING
    assert f.message.endswith("an upgrade would halt at that step before kubeadm runs")


def test_the_rule_is_the_snapshot_steps_own_at_the_boundary():
    need = etcd_snapshot_space(DB)
    assert need == DB + DB // 10 + 16 * MiB
    assert found(state(node("cp1", free=need, db=DB)), "1.35") == []
    assert len(found(state(node("cp1", free=need - 1, db=DB)), "1.35")) == 1


def test_only_the_control_plane_the_snapshot_runs_on_counts():
    # The snapshot is taken on the first control plane by name, where kubeadm upgrade apply runs.
    other_full = state(node("cp1", free=10 * 1024 * MiB, db=DB), node("cp2", free=MiB, db=DB))
    assert found(other_full, "1.35") == []
    [f] = found(state(node("cp1", free=MiB, db=DB), node("cp2", free=10 * 1024 * MiB, db=DB)),
                "1.35")
    assert f.subject == "node/cp1"


def test_nothing_for_external_etcd_a_target_already_reached_or_unknown_facts():
    external = (("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.34.3"),)
    assert found(state(node("cp1", free=MiB, db=DB, images=external)), "1.35") == []
    assert found(state(node("cp1", free=MiB, db=DB)), "v1.34.3") == []
    assert found(state(node("cp1", free=None, db=DB)), "1.35") == []
    assert found(state(node("cp1", free=MiB, db=None)), "1.35") == []


def test_etcd_writes_between_plan_and_apply_keep_the_plans_fingerprint():
    # Free space and database size change with every write; the step measures them again.
    before = state(node("cp1", free=20 * MiB, db=DB))
    after = state(node("cp1", free=19 * MiB, db=DB + MiB))
    assert state_fingerprint(before) == state_fingerprint(after)
    assert state_fingerprint(before) != state_fingerprint(state(node("cp1", cp=False)))

"""`check`'s host findings: kubelet flags a newer minor removed, cgroup v1 hosts, kubectl on nodes
outside the skew window — judged through `run_checks` as the CLI does."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from kubehop.core.checks.host import passes_flag
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
from kubehop.model.findings import Finding, Severity
from kubehop.model.versions import parse_kube_version, parse_minor_version

DATA = load_release_data()
TODAY = date(2026, 11, 25)
V = parse_kube_version
M = parse_minor_version
V2 = NodeHost(extra_args_file="/etc/default/kubelet", cgroup_fs="cgroup2fs")


def to(minor: str):
    """`check --to 1.NN` as the CLI resolves it: the newest known patch of the minor."""
    return DATA.latest_patch(parse_minor_version(minor))


def node(name: str, host: NodeHost | None = V2, *, kubectl: str = "1.34.3-1.1",
         cp: bool = False) -> NodeState:
    pkgs = NodePackages(OsFamily.DEBIAN, kubeadm="1.34.3-1.1", kubelet="1.34.3-1.1",
                        kubectl=kubectl, repo_minor=M("1.34"),
                        held=("kubeadm", "kubectl", "kubelet"), host=host)
    return NodeState(name=name, roles=("control-plane",) if cp else (), kubelet=V("v1.34.3"),
                     packages=pkgs)


def state(*nodes: NodeState, apiservers: tuple[str, ...] = ("v1.34.3",)) -> ClusterState:
    return ClusterState(
        apiservers=tuple(ApiServerInfo(f"10.0.0.{i}:6443", f"cp{i}", V(v))
                         for i, v in enumerate(apiservers, 1)),
        nodes=nodes or (node("cp1", cp=True), node("w1")), nodes_observed=True,
        kubeadm_kubernetes_version=V(apiservers[0]))


def found(findings: list[Finding], id_: str) -> list[Finding]:
    return [f for f in findings if f.id == id_]


PIC = ("--pod-infra-container-image=registry.k8s.io/pause:3.9",)


def test_a_cgroup_v1_node_blocks_a_target_of_135_or_later_naming_the_node_and_the_fix():
    s = state(node("cp1", cp=True), node("w1", NodeHost(cgroup_fs="tmpfs")), node("w2"))
    [f] = found(run_checks(s, DATA, TODAY, to("1.36")), "host.cgroup-v1")
    assert f.severity is Severity.BLOCKING
    assert f.subject == "node/w1"
    assert "node w1 runs cgroup v1 (/sys/fs/cgroup is tmpfs)" in f.message
    assert "systemd.unified_cgroup_hierarchy=1" in f.fix
    assert "failCgroupV1: false" in f.fix


def test_cgroup_v1_does_not_matter_for_a_target_before_135():
    s = state(node("cp1", cp=True), node("w1", NodeHost(cgroup_fs="tmpfs")))
    assert not found(run_checks(s, DATA, TODAY, to("1.34")), "host.cgroup-v1")


def test_without_a_target_cgroup_v1_is_a_warning_when_the_next_minor_needs_v2():
    s = state(node("cp1", cp=True), node("w1", NodeHost(cgroup_fs="tmpfs")))
    [f] = found(run_checks(s, DATA, TODAY), "host.cgroup-v1")
    assert f.severity is Severity.WARNING


def test_a_removed_kubelet_flag_in_the_extra_args_blocks_with_its_file_and_the_fix():
    host = NodeHost(extra_args=PIC, extra_args_file="/etc/sysconfig/kubelet",
                    cgroup_fs="cgroup2fs")
    s = state(node("cp1", cp=True), node("w1", host))
    [f] = found(run_checks(s, DATA, TODAY, V("v1.35.2")), "host.kubelet-flag-removed")
    assert f.severity is Severity.BLOCKING
    assert f.subject == "node/w1"
    assert "/etc/sysconfig/kubelet on node w1 passes --pod-infra-container-image" in f.message
    assert f.fix.startswith("remove --pod-infra-container-image from KUBELET_EXTRA_ARGS in "
                            "/etc/sysconfig/kubelet on node w1")


def test_a_flag_removed_later_than_the_target_is_not_reported():
    s = state(node("cp1", cp=True, host=NodeHost(extra_args=PIC)))
    assert not found(run_checks(s, DATA, TODAY, to("1.34")), "host.kubelet-flag-removed")


def test_many_nodes_with_the_same_problem_make_one_finding():
    nodes = [node(f"w{i}", NodeHost(cgroup_fs="tmpfs")) for i in range(1, 9)]
    [f] = found(run_checks(state(node("cp1", cp=True), *nodes), DATA, TODAY, to("1.35")),
                "host.cgroup-v1")
    assert f.subject == "nodes/8"
    assert "and 3 more run cgroup v1" in f.message


@pytest.mark.parametrize(("flag", "args", "expected"), [
    ("--pod-infra-container-image", ("--pod-infra-container-image=x",), True),
    ("--pod-infra-container-image", ("--v=2", "--pod-infra-container-image", "x"), True),
    ("--container-runtime", ("--container-runtime-endpoint=unix:///run/c.sock",), False),
    ("--container-runtime", ("--container-runtime=remote",), True),
    ("--container-runtime", (), False),
])
def test_a_flag_is_matched_by_name_not_by_prefix(flag, args, expected):
    assert passes_flag(args, flag) is expected


def test_nodes_without_host_facts_are_not_judged():
    s = state(node("cp1", cp=True, host=None))
    assert not [f for f in run_checks(s, DATA, TODAY, to("1.36")) if f.id.startswith("host.")]


@pytest.mark.parametrize(("kubectl", "apiservers", "warned"), [
    ("1.32.1-1.1", ("v1.34.3",), True),
    ("1.33.1-1.1", ("v1.34.3",), False),
    ("1.35.0-1.1", ("v1.34.3",), False),
    ("1.36.0-1.1", ("v1.34.3",), True),
    ("1.34.3-1.1", ("v1.34.3", "v1.33.5"), False),
    ("1.35.0-1.1", ("v1.34.3", "v1.33.5"), True),  # one minor newer than 1.34, two than 1.33
])
def test_a_nodes_kubectl_outside_every_apiservers_window_is_a_warning(kubectl, apiservers,
                                                                      warned):
    s = state(node("cp1", cp=True), node("w1", kubectl=kubectl), apiservers=apiservers)
    findings = found(run_checks(s, DATA, TODAY), "skew.node-kubectl")
    assert bool(findings) is warned
    if warned:
        assert findings[0].severity is Severity.WARNING
        assert findings[0].subject == "node/w1"


def test_a_node_without_kubectl_is_not_a_skew_problem():
    w1 = node("w1")
    pkgs = dataclasses.replace(w1.packages, kubectl=None)
    s = state(node("cp1", cp=True), dataclasses.replace(w1, packages=pkgs),
              apiservers=("v1.36.1",))
    assert [f.subject for f in found(run_checks(s, DATA, TODAY), "skew.node-kubectl")] == [
        "node/cp1"]
